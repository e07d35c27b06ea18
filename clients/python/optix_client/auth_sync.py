"""Access tokens for the sync client: the same rules as the async one, under a threading lock."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from optix.user.v1 import user_service_pb2
from optix_client.auth_rules import TokenRules
from optix_client.credentials import Credentials
from optix_client.errors import OptixError
from optix_client.session import NextStep, Session

if TYPE_CHECKING:
    from optix.user.v1.user_service_pb2_grpc import UserServiceStub


class SyncTokenManager(TokenRules):
    """Keeps a fresh access token; concurrent threads share one Login/RefreshToken round trip."""

    def __init__(
        self,
        session: Session,
        users: UserServiceStub,
        credentials: Credentials | None,
        timeout: float,
    ) -> None:
        super().__init__(session, credentials)
        self._users = users
        self._timeout = timeout
        self._lock = threading.Lock()

    def access_token(self) -> str | None:
        """A usable access token, refreshing or signing in first when needed; None if anonymous."""
        ready, token = self.usable_token()
        if ready:
            return token
        with self._lock:
            step = self.next_step()
            saved = self.saved_login()
            if step is NextStep.REFRESH:
                self._refresh()
            elif step is NextStep.LOGIN and saved is not None:
                self._login(saved.email, saved.password)
            return self.session.access_token

    def _refresh(self) -> None:
        try:
            response = self._users.RefreshToken(self.refresh_request(), timeout=self._timeout)
        except OptixError as error:
            saved = self.refresh_rejected(error)
            self._login(saved.email, saved.password)
            return
        self.accept_tokens(response.tokens)

    def _login(self, email: str, password: str) -> None:
        request = user_service_pb2.LoginRequest(email=email, password=password)
        self.accept_login(self._users.Login(request, timeout=self._timeout))

    def login(self, email: str, password: str) -> None:
        """Sign in explicitly (raises MfaRequiredError when the account has MFA)."""
        with self._lock:
            self._login(email, password)

    def complete_mfa_login(
        self, challenge_id: str, *, totp_code: str = "", recovery_code: str = ""
    ) -> None:
        """Redeem an MFA challenge with a TOTP or recovery code and keep the tokens."""
        request = self.mfa_request(challenge_id, totp_code, recovery_code)
        with self._lock:
            response = self._users.CompleteMfaLogin(request, timeout=self._timeout)
            self.accept_tokens(response.tokens)

    def register(
        self, request: user_service_pb2.RegisterRequest
    ) -> user_service_pb2.RegisterResponse:
        """Create an account and keep its tokens, so the client is signed in at once."""
        with self._lock:
            response = self._users.Register(request, timeout=self._timeout)
            self.accept_tokens(response.tokens)
            return response

    def logout(self) -> None:
        """Revoke the session's refresh token family and forget the tokens."""
        request = self.logout_request()
        if request is not None:
            self._users.Logout(request, timeout=self._timeout)
        with self._lock:
            self.forget()
