"""Access tokens for the async client: sign-in, refresh before expiry, one refresh at a time."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import grpc

from optix.user.v1 import user_service_pb2
from optix_client.credentials import (
    Credentials,
    PasswordCredentials,
    RefreshTokenCredentials,
    StaticTokenCredentials,
    TokenProviderCredentials,
)
from optix_client.errors import OptixError
from optix_client.session import NextStep, Session

if TYPE_CHECKING:
    from optix.user.v1.user_service_pb2_grpc import UserServiceAsyncStub


class MfaRequiredError(OptixError):
    """Login needs a second factor: call `complete_mfa_login` with this challenge id."""

    def __init__(self, challenge_id: str) -> None:
        super().__init__(grpc.StatusCode.UNAUTHENTICATED, "a second factor is required")
        self.challenge_id = challenge_id


def seed_session(session: Session, credentials: Credentials | None) -> None:
    """Put what the credentials already give (a static or refresh token) into the session."""
    if isinstance(credentials, StaticTokenCredentials):
        session.access_token = credentials.token
        session.static = True
    elif isinstance(credentials, RefreshTokenCredentials):
        session.refresh_token = credentials.refresh_token


class AsyncTokenManager:
    """Keeps a fresh access token; concurrent callers share one Login/RefreshToken round trip."""

    def __init__(
        self,
        session: Session,
        users: UserServiceAsyncStub,
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
        self._lock = asyncio.Lock()
        seed_session(session, credentials)

    @property
    def session(self) -> Session:
        """The current tokens (read-only use)."""
        return self._session

    async def access_token(self) -> str | None:
        """A usable access token, refreshing or signing in first when needed; None if anonymous."""
        if self._provider is not None:
            return self._provider()
        if self._session.access_is_fresh():
            return self._session.access_token
        async with self._lock:
            # Another caller may have refreshed while this one waited for the lock.
            step = self._session.next_step(can_login=self._password is not None)
            if step is NextStep.REFRESH:
                await self._refresh()
            elif step is NextStep.LOGIN and self._password is not None:
                await self._login(self._password.email, self._password.password)
            return self._session.access_token

    async def _refresh(self) -> None:
        token = self._session.refresh_token or ""
        try:
            response = await self._users.RefreshToken(
                user_service_pb2.RefreshTokenRequest(refresh_token=token), timeout=self._timeout
            )
        except OptixError as error:
            if error.code is not grpc.StatusCode.UNAUTHENTICATED:
                raise
            # Retired or revoked: the session is over; sign in again if we can.
            self._session.clear()
            if self._password is None:
                raise
            await self._login(self._password.email, self._password.password)
            return
        self._session.apply(response.tokens)

    async def _login(self, email: str, password: str) -> None:
        response = await self._users.Login(
            user_service_pb2.LoginRequest(email=email, password=password), timeout=self._timeout
        )
        if response.HasField("mfa_challenge"):
            raise MfaRequiredError(response.mfa_challenge.challenge_id)
        self._session.apply(response.tokens)

    async def login(self, email: str, password: str) -> None:
        """Sign in explicitly (raises MfaRequiredError when the account has MFA)."""
        async with self._lock:
            await self._login(email, password)

    async def complete_mfa_login(
        self, challenge_id: str, *, totp_code: str = "", recovery_code: str = ""
    ) -> None:
        """Redeem an MFA challenge with a TOTP or recovery code and keep the tokens."""
        request = user_service_pb2.CompleteMfaLoginRequest(challenge_id=challenge_id)
        if recovery_code:
            request.recovery_code = recovery_code
        else:
            request.totp_code = totp_code
        async with self._lock:
            response = await self._users.CompleteMfaLogin(request, timeout=self._timeout)
            self._session.apply(response.tokens)

    async def register(
        self, request: user_service_pb2.RegisterRequest
    ) -> user_service_pb2.RegisterResponse:
        """Create an account and keep its tokens, so the client is signed in at once."""
        async with self._lock:
            response = await self._users.Register(request, timeout=self._timeout)
            self._session.apply(response.tokens)
            return response

    async def logout(self) -> None:
        """Revoke the session's refresh token family and forget the tokens."""
        token = self._session.refresh_token
        # Logout is authenticated: it goes out before the tokens are dropped, and outside the
        # lock, because the interceptor takes the lock to attach the access token.
        if token:
            await self._users.Logout(
                user_service_pb2.LogoutRequest(refresh_token=token), timeout=self._timeout
            )
        async with self._lock:
            self._session.clear()
            self._password = None
