"""A cache that keeps working when Redis does not: for state that may be per process for a
while (login and registration limits, known sign-in addresses), not for state replicas must
agree on (leases). While the shared cache is unreachable, operations go to this process's own
memory, and the shared one is tried again every `retry_after`; limits then count per replica
until Redis is back (more lenient by the number of replicas, never off)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TypeVar

from optix_server.infra.cache import Cache, InMemoryCache
from optix_server.infra.logging import get_logger
from optix_server.infra.outages import dependency_outage

log = get_logger(__name__)

T = TypeVar("T")


class FallbackCache:
    """`shared` while it answers, this process's memory while it does not."""

    def __init__(
        self,
        shared: Cache,
        *,
        retry_after: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._shared = shared
        self._local = InMemoryCache()
        self._retry_after = retry_after
        self._now = monotonic
        # Monotonic seconds until which the shared cache is not tried (it just failed).
        self._away_until = float("-inf")
        # Whether the last try of the shared cache failed (logged once per outage).
        self._away = False

    @property
    def on_fallback(self) -> bool:
        """Whether operations currently go to this process's memory."""
        return self._now() < self._away_until

    async def _either(
        self, shared: Callable[[], Awaitable[T]], local: Callable[[], Awaitable[T]]
    ) -> T:
        if self.on_fallback:
            return await local()
        try:
            result = await shared()
        except Exception as exc:
            if dependency_outage(exc) is None:
                raise
            if not self._away:
                log.warning(
                    "the shared cache is unreachable; limits count per process until it is back",
                    error=type(exc).__name__,
                )
            self._away = True
            self._away_until = self._now() + self._retry_after
            return await local()
        if self._away:
            self._away = False
            log.info("the shared cache is back; limits are shared again")
        return result

    async def get(self, key: str) -> bytes | None:
        """The value of `key`."""
        return await self._either(lambda: self._shared.get(key), lambda: self._local.get(key))

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Values for `keys`."""
        return await self._either(
            lambda: self._shared.get_many(keys), lambda: self._local.get_many(keys)
        )

    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        """Store `value` under `key`."""
        await self._either(
            lambda: self._shared.set(key, value, ttl_seconds),
            lambda: self._local.set(key, value, ttl_seconds),
        )

    async def set_many(self, items: Mapping[str, bytes], ttl_seconds: float | None = None) -> None:
        """Store every item."""
        await self._either(
            lambda: self._shared.set_many(items, ttl_seconds),
            lambda: self._local.set_many(items, ttl_seconds),
        )

    async def delete(self, key: str) -> None:
        """Remove `key`."""
        await self._either(lambda: self._shared.delete(key), lambda: self._local.delete(key))

    async def incr(self, key: str, ttl_seconds: float, amount: int = 1) -> int:
        """Add `amount` to the counter at `key`."""
        return await self._either(
            lambda: self._shared.incr(key, ttl_seconds, amount),
            lambda: self._local.incr(key, ttl_seconds, amount),
        )

    async def ttl(self, key: str) -> float | None:
        """Seconds left on `key`."""
        return await self._either(lambda: self._shared.ttl(key), lambda: self._local.ttl(key))

    async def hold(self, key: str, holder: str, ttl_seconds: float) -> bool:
        """Refused: a lease that is per process while Redis is away is no lease at all."""
        return await self._shared.hold(key, holder, ttl_seconds)

    async def let_go(self, key: str, holder: str) -> None:
        """Release a lease (shared cache only, like hold)."""
        await self._shared.let_go(key, holder)

    async def close(self) -> None:
        """Close the shared cache (this process's memory needs nothing)."""
        await self._shared.close()
