"""Sign-in sessions: token pairs, refresh rotation with reuse detection (RFC 9700), logout."""

from __future__ import annotations

from datetime import timedelta

from optix_server.infra.auth.clock import Clock
from optix_server.infra.auth.revocation import SessionRevocations
from optix_server.infra.auth.tokens import TokenAuthority
from optix_server.infra.crypto import opaque_token, sha256_hex
from optix_server.infra.errors import Unauthenticated
from optix_server.infra.logging import get_logger
from optix_server.user.domain import TokenPair
from optix_server.user.repository import NewFamily, RotationOutcome, UserRepository

log = get_logger(__name__)

_REFRESH_PREFIX = "rt_"


def _invalid_refresh() -> Unauthenticated:
    return Unauthenticated("invalid or expired refresh token", reason="INVALID_REFRESH_TOKEN")


class SessionManager:
    """Issues token pairs and rotates, revokes and validates refresh tokens."""

    def __init__(
        self,
        repository: UserRepository,
        authority: TokenAuthority,
        clock: Clock,
        access_ttl: timedelta,
        refresh_ttl: timedelta,
        revocations: SessionRevocations,
    ) -> None:
        self._repo = repository
        self._revocations = revocations
        self._authority = authority
        self._clock = clock
        self._access_ttl = access_ttl
        self._refresh_ttl = refresh_ttl

    def prepare(self) -> tuple[str, NewFamily]:
        """A new session's first refresh token and what to store of it (for a caller that
        stores it with other rows in one transaction; then `tokens`)."""
        now = self._clock.now()
        refresh = opaque_token(_REFRESH_PREFIX)
        return refresh, NewFamily(sha256_hex(refresh), now, now + self._refresh_ttl)

    def tokens(self, user_id: str, family_id: str, refresh: str, family: NewFamily) -> TokenPair:
        """The first pair of a stored session."""
        access = self._authority.issue_access_token(
            user_id, session_id=family_id, ttl=self._access_ttl
        )
        return TokenPair(access.token, access.expire_time, refresh, family.expire_time)

    async def start(self, user_id: str) -> TokenPair:
        """A new sign-in session (token family) for `user_id` and its first pair."""
        refresh, family = self.prepare()
        family_id = await self._repo.start_family(user_id, family)
        return self.tokens(user_id, family_id, refresh, family)

    async def refresh(self, refresh_token: str) -> TokenPair:
        """Rotate a refresh token; a replayed one revokes its whole family."""
        if not refresh_token.startswith(_REFRESH_PREFIX):
            # An access token or anything else: not a refresh token, never looked up.
            raise _invalid_refresh()
        now = self._clock.now()
        new_refresh = opaque_token(_REFRESH_PREFIX)
        rotation = await self._repo.rotate_refresh_token(
            sha256_hex(refresh_token), sha256_hex(new_refresh), now
        )
        if rotation.outcome is RotationOutcome.REUSED:
            await self._end(rotation.family_id, "reuse")
            # A replay means the token leaked (or a client bug): end the session everywhere.
            log.warning(
                "refresh token reuse; family revoked",
                user_id=rotation.user_id,
                family_id=rotation.family_id,
            )
            raise _invalid_refresh()
        if rotation.outcome is not RotationOutcome.ROTATED:
            raise _invalid_refresh()
        assert rotation.family_expire_time is not None
        access = self._authority.issue_access_token(
            rotation.user_id, session_id=rotation.family_id, ttl=self._access_ttl
        )
        return TokenPair(access.token, access.expire_time, new_refresh, rotation.family_expire_time)

    async def logout(self, refresh_token: str, user_id: str | None) -> None:
        """Revoke the family of `refresh_token` (only the caller's own, when one is known)."""
        if not refresh_token.startswith(_REFRESH_PREFIX):
            raise _invalid_refresh()
        found = await self._repo.family_of_token(sha256_hex(refresh_token))
        if found is None or (user_id is not None and found[1] != user_id):
            raise _invalid_refresh()
        await self._end(found[0], "logout")

    async def end_all(self, user_id: str, reason: str) -> None:
        """Revoke every session of `user_id`."""
        for family_id in await self._repo.revoke_user_families(user_id, self._clock.now(), reason):
            await self._revocations.revoke(family_id)

    async def _end(self, family_id: str, reason: str) -> None:
        # The database makes the refresh tokens useless; the deny-list does the same for the
        # access tokens already handed out for this session.
        await self._repo.revoke_family(family_id, self._clock.now(), reason)
        await self._revocations.revoke(family_id)
