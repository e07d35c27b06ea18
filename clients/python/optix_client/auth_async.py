"""Access tokens for the async client: sign-in, refresh before expiry, one refresh at a time."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from optix.user.v1 import user_service_pb2
from optix_client.auth_rules import MfaRequiredError, TokenRules
from optix_client.credentials import Credentials
from optix_client.errors import OptixError
from optix_client.session import NextStep, Session

if TYPE_CHECKING:
    from optix.user.v1.user_service_pb2_grpc import UserServiceAsyncStub

__all__ = ["AsyncTokenManager", "MfaRequiredError"]


class AsyncTokenManager(TokenRules):
    """Keeps a fresh access token; concurrent callers share one Login/RefreshToken round trip."""

    def __init__(
        self,
        session: Session,
        users: UserServiceAsyncStub,
        credentials: Credentials | None,
        timeout: float,
    ) -> None:
        super().__init__(session, credentials)
        self._users = users
        self._timeout = timeout
        self._lock = asyncio.Lock()

    async def access_token(self) -> str | None:
        """A usable access token, refreshing or signing in first when needed; None if anonymous."""
        ready, token = self.usable_token()
        if ready:
            return token
        async with self._lock:
            step = self.next_step()
            saved = self.saved_login()
            if step is NextStep.REFRESH:
                await self._refresh()
            elif step is NextStep.LOGIN and saved is not None:
                await self._login(saved.email, saved.password)
            return self.session.access_token

    async def _refresh(self) -> None:
        try:
            response = await self._users.RefreshToken(self.refresh_request(), timeout=self._timeout)
        except OptixError as error:
            saved = self.refresh_rejected(error)
            await self._login(saved.email, saved.password)
            return
        self.accept_tokens(response.tokens)

    async def _login(self, email: str, password: str) -> None:
        request = user_service_pb2.LoginRequest(email=email, password=password)
        self.accept_login(await self._users.Login(request, timeout=self._timeout))

    async def login(self, email: str, password: str) -> None:
        """Sign in explicitly (raises MfaRequiredError when the account has MFA)."""
        async with self._lock:
            await self._login(email, password)

    async def complete_mfa_login(
        self, challenge_id: str, *, totp_code: str = "", recovery_code: str = ""
    ) -> None:
        """Redeem an MFA challenge with a TOTP or recovery code and keep the tokens."""
        request = self.mfa_request(challenge_id, totp_code, recovery_code)
        async with self._lock:
            response = await self._users.CompleteMfaLogin(request, timeout=self._timeout)
            self.accept_tokens(response.tokens)

    async def register(
        self, request: user_service_pb2.RegisterRequest
    ) -> user_service_pb2.RegisterResponse:
        """Create an account and keep its tokens, so the client is signed in at once."""
        async with self._lock:
            response = await self._users.Register(request, timeout=self._timeout)
            self.accept_tokens(response.tokens)
            return response

    async def logout(self) -> None:
        """Revoke the session's refresh token family and forget the tokens."""
        request = self.logout_request()
        # Logout is authenticated: it goes out before the tokens are dropped, and outside the
        # lock, because the interceptor takes the lock to attach the access token.
        if request is not None:
            await self._users.Logout(request, timeout=self._timeout)
        async with self._lock:
            self.forget()
