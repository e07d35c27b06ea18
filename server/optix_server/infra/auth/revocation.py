"""Ended sign-in sessions, so their access tokens stop working before they expire."""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

_PREFIX = "auth:revoked-session:"


class _Store(Protocol):
    """The part of infra.cache.Cache needed here."""

    async def get(self, key: str) -> bytes | None:
        """The value of `key`, None when absent or expired."""
        ...

    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        """Store `value` under `key` for `ttl_seconds`."""
        ...


class SessionRevocations:
    """A deny-list of session ids (token families) in the shared cache.

    An entry only has to outlive the longest access token, so the list stays small; with Redis
    configured every replica sees it.
    """

    def __init__(self, store: _Store, max_token_lifetime: timedelta) -> None:
        self._store = store
        # Plus a minute for clock skew between replicas.
        self._ttl = (max_token_lifetime + timedelta(minutes=1)).total_seconds()

    async def revoke(self, session_id: str) -> None:
        """Refuse access tokens of `session_id` from now on."""
        await self._store.set(_PREFIX + session_id, b"1", ttl_seconds=self._ttl)

    async def is_revoked(self, session_id: str) -> bool:
        """Whether `session_id` was ended."""
        return await self._store.get(_PREFIX + session_id) is not None
