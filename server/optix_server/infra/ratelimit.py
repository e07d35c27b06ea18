"""Fixed-window failure limits over the shared Cache (in-process or Redis): RESOURCE_EXHAUSTED."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from optix_server.infra.auth.clock import Clock
from optix_server.infra.errors import ResourceExhausted


class CounterStore(Protocol):
    """The part of infra.cache.Cache the limiter needs; counters expire on their own."""

    async def get(self, key: str) -> bytes | None:
        """The counter's value, None when absent or expired."""
        ...

    async def incr(self, key: str, ttl_seconds: float) -> int:
        """Add one (the first increment starts the TTL) and return the count."""
        ...

    async def delete(self, key: str) -> None:
        """Forget `key`."""
        ...


@dataclass(frozen=True)
class Limit:
    """At most `max_failures` failures per subject in each `window`."""

    name: str
    max_failures: int
    window: timedelta


class FailureLimiter:
    """Counts failures per subject in fixed windows; refuses further attempts until the window ends.

    A window always ends, so an attacker can delay a victim for at most one window at a time,
    never lock the account for good.
    """

    def __init__(self, store: CounterStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def _window(self, limit: Limit, subject: str) -> tuple[str, timedelta]:
        size = limit.window.total_seconds()
        now = self._clock.now().timestamp()
        index = math.floor(now / size)
        # Hash the subject: emails and addresses do not belong in Redis key names.
        digest = hashlib.sha256(subject.encode("utf-8")).hexdigest()[:32]
        remaining = timedelta(seconds=(index + 1) * size - now)
        return f"rl:{limit.name}:{digest}:{index}", remaining

    async def check(self, limit: Limit, subject: str) -> None:
        """Raise ResourceExhausted (with retry_after) when `subject` used up `limit`."""
        key, remaining = self._window(limit, subject)
        raw = await self._store.get(key)
        if raw is not None and int(raw) >= limit.max_failures:
            raise ResourceExhausted(
                "too many failed attempts; try again later",
                retry_after=timedelta(seconds=math.ceil(remaining.total_seconds())),
                reason="TOO_MANY_ATTEMPTS",
            )

    async def record_failure(self, limit: Limit, subject: str) -> None:
        """Count one failure of `subject` against `limit`."""
        key, remaining = self._window(limit, subject)
        # The window index is in the key, so the TTL only has to outlive the window (cleanup).
        await self._store.incr(key, remaining.total_seconds() + 1)

    async def clear(self, limit: Limit, subject: str) -> None:
        """Forget `subject`'s failures in the current window (after a success)."""
        key, _ = self._window(limit, subject)
        await self._store.delete(key)
