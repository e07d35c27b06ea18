"""What the async and sync token managers decide alike, apart from how they wait and call: when
a round trip is needed, the requests they send, and what a Login or RefreshToken answer means."""

from __future__ import annotations

import grpc

from optix.user.v1 import user_pb2, user_service_pb2
from optix_client.credentials import (
    Credentials,
    PasswordCredentials,
    RefreshTokenCredentials,
    StaticTokenCredentials,
    TokenProviderCredentials,
)
from optix_client.errors import OptixError
from optix_client.session import NextStep, Session


class MfaRequiredError(OptixError):
    """Login needs a second factor: call `complete_mfa_login` with this challenge id."""

    def __init__(self, challenge_id: str) -> None:
        super().__init__(grpc.StatusCode.UNAUTHENTICATED, "a second factor is required")
        self.challenge_id = challenge_id


class TokenRules:
    """The session and credentials of one client, and the rules both managers follow."""

    def __init__(self, session: Session, credentials: Credentials | None) -> None:
        self._session = session
        self._password = credentials if isinstance(credentials, PasswordCredentials) else None
        self._provider = (
            credentials.provider if isinstance(credentials, TokenProviderCredentials) else None
        )
        # What the credentials already give (a static or refresh token) goes in at once.
        if isinstance(credentials, StaticTokenCredentials):
            session.access_token = credentials.token
            session.static = True
        elif isinstance(credentials, RefreshTokenCredentials):
            session.refresh_token = credentials.refresh_token

    @property
    def session(self) -> Session:
        """The current tokens (read-only use)."""
        return self._session

    def usable_token(self) -> tuple[bool, str | None]:
        """(True, token) when no round trip is needed: a provider's token or a fresh one."""
        if self._provider is not None:
            return True, self._provider()
        if self._session.access_is_fresh():
            return True, self._session.access_token
        return False, None

    def next_step(self) -> NextStep:
        """Refresh, sign in again or nothing (asked again under the lock: another caller may
        have refreshed meanwhile)."""
        return self._session.next_step(can_login=self._password is not None)

    def saved_login(self) -> PasswordCredentials | None:
        """The email and password to sign in again with, if the client was given them."""
        return self._password

    def refresh_request(self) -> user_service_pb2.RefreshTokenRequest:
        """A RefreshToken request for the session's refresh token."""
        return user_service_pb2.RefreshTokenRequest(refresh_token=self._session.refresh_token or "")

    def refresh_rejected(self, error: OptixError) -> PasswordCredentials:
        """After a failed RefreshToken: re-raise unless the refresh token was retired or revoked
        and the client can sign in again, in which case the session is over; returns what to
        sign in with."""
        if error.code is not grpc.StatusCode.UNAUTHENTICATED:
            raise error
        self._session.clear()
        if self._password is None:
            raise error
        return self._password

    def accept_tokens(self, tokens: user_pb2.TokenPair) -> None:
        """Keep the tokens of a Register, Login, CompleteMfaLogin or RefreshToken answer."""
        self._session.apply(tokens)

    def accept_login(self, response: user_service_pb2.LoginResponse) -> None:
        """Keep a Login answer's tokens, or raise MfaRequiredError with its challenge."""
        if response.HasField("mfa_challenge"):
            raise MfaRequiredError(response.mfa_challenge.challenge_id)
        self._session.apply(response.tokens)

    @staticmethod
    def mfa_request(
        challenge_id: str, totp_code: str, recovery_code: str
    ) -> user_service_pb2.CompleteMfaLoginRequest:
        """A CompleteMfaLogin request redeeming a TOTP or a recovery code."""
        request = user_service_pb2.CompleteMfaLoginRequest(challenge_id=challenge_id)
        if recovery_code:
            request.recovery_code = recovery_code
        else:
            request.totp_code = totp_code
        return request

    def logout_request(self) -> user_service_pb2.LogoutRequest | None:
        """A Logout request revoking the session's refresh token family (None without one)."""
        token = self._session.refresh_token
        return user_service_pb2.LogoutRequest(refresh_token=token) if token else None

    def forget(self) -> None:
        """Drop the tokens and the saved password (after logout)."""
        self._session.clear()
        self._password = None
