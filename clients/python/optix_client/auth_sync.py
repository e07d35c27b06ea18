"""Access tokens for the sync client: the same rules as the async one, under a threading lock."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import grpc

from optix.user.v1 import user_service_pb2
from optix_client.auth_async import MfaRequiredError, seed_session
from optix_client.credentials import (
    Credentials,
    PasswordCredentials,
    TokenProviderCredentials,
)
from optix_client.errors import OptixError
from optix_client.session import NextStep, Session

if TYPE_CHECKING:
    from optix.user.v1.user_service_pb2_grpc import UserServiceStub


class SyncTokenManager:
    """Keeps a fresh access token; concurrent threads share one Login/RefreshToken round trip."""

    def __init__(
        self,
        session: Session,
        users: UserServiceStub,
        credentials: Credentials | None,
        timeout: float,
    ) -> None:
        self._session = session
        self._users = users
        self._password = credentials if isinstance(credentials, PasswordCredentials) else None
        self._provider = (
            credentials.provider if isinstance(credentials, TokenProviderCredentials) else None
        )
        self._timeout = timeout
        self._lock = threading.Lock()
        seed_session(session, credentials)

    @property
    def session(self) -> Session:
        """The current tokens (read-only use)."""
        return self._session

    def access_token(self) -> str | None:
        """A usable access token, refreshing or signing in first when needed; None if anonymous."""
        if self._provider is not None:
            return self._provider()
        if self._session.access_is_fresh():
            return self._session.access_token
        with self._lock:
            step = self._session.next_step(can_login=self._password is not None)
            if step is NextStep.REFRESH:
                self._refresh()
            elif step is NextStep.LOGIN and self._password is not None:
                self._login(self._password.email, self._password.password)
            return self._session.access_token

    def _refresh(self) -> None:
        token = self._session.refresh_token or ""
        try:
            response = self._users.RefreshToken(
                user_service_pb2.RefreshTokenRequest(refresh_token=token), timeout=self._timeout
            )
        except OptixError as error:
            if error.code is not grpc.StatusCode.UNAUTHENTICATED:
                raise
            self._session.clear()
            if self._password is None:
                raise
            self._login(self._password.email, self._password.password)
            return
        self._session.apply(response.tokens)

    def _login(self, email: str, password: str) -> None:
        response = self._users.Login(
            user_service_pb2.LoginRequest(email=email, password=password), timeout=self._timeout
        )
        if response.HasField("mfa_challenge"):
            raise MfaRequiredError(response.mfa_challenge.challenge_id)
        self._session.apply(response.tokens)

    def login(self, email: str, password: str) -> None:
        """Sign in explicitly (raises MfaRequiredError when the account has MFA)."""
        with self._lock:
            self._login(email, password)

    def complete_mfa_login(
        self, challenge_id: str, *, totp_code: str = "", recovery_code: str = ""
    ) -> None:
        """Redeem an MFA challenge with a TOTP or recovery code and keep the tokens."""
        request = user_service_pb2.CompleteMfaLoginRequest(challenge_id=challenge_id)
        if recovery_code:
            request.recovery_code = recovery_code
        else:
            request.totp_code = totp_code
        with self._lock:
            response = self._users.CompleteMfaLogin(request, timeout=self._timeout)
            self._session.apply(response.tokens)

    def register(
        self, request: user_service_pb2.RegisterRequest
    ) -> user_service_pb2.RegisterResponse:
        """Create an account and keep its tokens, so the client is signed in at once."""
        with self._lock:
            response = self._users.Register(request, timeout=self._timeout)
            self._session.apply(response.tokens)
            return response

    def logout(self) -> None:
        """Revoke the session's refresh token family and forget the tokens."""
        token = self._session.refresh_token
        if token:
            self._users.Logout(
                user_service_pb2.LogoutRequest(refresh_token=token), timeout=self._timeout
            )
        with self._lock:
            self._session.clear()
            self._password = None
