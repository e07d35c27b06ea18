"""Fixed-window failure limits over the shared Cache (in-process or Redis): RESOURCE_EXHAUSTED."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from optix_server.infra.auth.clock import Clock
from optix_server.infra.errors import ResourceExhausted


class CounterStore(Protocol):
    """The part of infra.cache.Cache the limiter needs; counters expire on their own."""

    async def get(self, key: str) -> bytes | None:
        """The counter's value, None when absent or expired."""
        ...

    async def incr(self, key: str, ttl_seconds: float, amount: int = 1) -> int:
        """Add `amount` (the first change starts the TTL) and return the count."""
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


@dataclass
class Claim:
    """Counters an attempt has already been counted in (keys of their windows, with TTLs)."""

    counted: list[tuple[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class ClaimRequest:
    """One counter an attempt counts against; `enforce=False` counts without refusing."""

    limit: Limit
    subject: str
    enforce: bool = True


class FailureLimiter:
    """Counts attempts per subject in fixed windows; refuses further ones until the window ends.

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

    async def claim(self, requests: Sequence[ClaimRequest]) -> Claim:
        """Count an attempt BEFORE it runs, as if it failed, and refuse when that goes past a
        limit. Counting first is what stops a burst of concurrent guesses from all passing a
        check made before any of them is recorded. Release the claim if the attempt succeeds."""
        claim = Claim()
        for request in requests:
            key, remaining = self._window(request.limit, request.subject)
            ttl = remaining.total_seconds() + 1
            count = await self._store.incr(key, ttl)
            claim.counted.append((key, ttl))
            if request.enforce and count > request.limit.max_failures:
                # A refused attempt was never made: take it back out of every counter.
                await self.release(claim)
                raise ResourceExhausted(
                    "too many failed attempts; try again later",
                    retry_after=timedelta(seconds=math.ceil(remaining.total_seconds())),
                    reason="TOO_MANY_ATTEMPTS",
                )
        return claim

    async def release(self, claim: Claim) -> None:
        """The attempt succeeded (or never ran): take it back out of the counters it claimed."""
        for key, ttl in claim.counted:
            await self._store.incr(key, ttl, amount=-1)
        claim.counted.clear()

    async def clear(self, limit: Limit, subject: str) -> None:
        """Forget `subject`'s failures in the current window (after a success)."""
        key, _ = self._window(limit, subject)
        await self._store.delete(key)
