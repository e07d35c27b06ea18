"""Ended sign-in sessions, so their access tokens stop working before they expire."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Protocol

from optix_server.infra.auth.session_watch import SESSION_ENDED_CHANNEL

_PREFIX = "auth:revoked-session:"


class _Store(Protocol):
    """The part of infra.cache.Cache needed here."""

    async def get(self, key: str) -> bytes | None:
        """The value of `key`, None when absent or expired."""
        ...

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Values for `keys`, in order, None where absent."""
        ...

    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        """Store `value` under `key` for `ttl_seconds`."""
        ...


class _Announcer(Protocol):
    """The part of infra.pubsub.PubSub needed here."""

    async def publish(self, channel: str, payload: bytes) -> None:
        """Send `payload` to every subscriber of `channel`."""
        ...


class SessionRevocations:
    """A deny-list of session ids (token families) in the shared cache.

    An entry only has to outlive the longest access token, so the list stays small; with Redis
    configured every replica sees it.
    """

    def __init__(
        self, store: _Store, max_token_lifetime: timedelta, announcer: _Announcer | None = None
    ) -> None:
        self._store = store
        self._announcer = announcer
        # Plus a minute for clock skew between replicas.
        self._ttl = (max_token_lifetime + timedelta(minutes=1)).total_seconds()

    async def revoke(self, session_id: str) -> None:
        """Refuse access tokens of `session_id` from now on, and end its open streams."""
        await self._store.set(_PREFIX + session_id, b"1", ttl_seconds=self._ttl)
        if self._announcer is not None:
            await self._announcer.publish(SESSION_ENDED_CHANNEL, session_id.encode())

    async def is_revoked(self, session_id: str) -> bool:
        """Whether `session_id` was ended."""
        return await self._store.get(_PREFIX + session_id) is not None

    async def ended_among(self, session_ids: Sequence[str]) -> set[str]:
        """Which of `session_ids` were ended (one lookup for all)."""
        found = await self._store.get_many([_PREFIX + s for s in session_ids])
        return {s for s, value in zip(session_ids, found, strict=True) if value is not None}
