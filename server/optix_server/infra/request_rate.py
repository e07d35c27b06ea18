"""Outgoing request budgets (e.g. a provider's 120 requests per minute per app): an in-process
sliding window, and one shared by every replica through the Cache."""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

from optix_server.infra.cache import Cache


class RequestLimiter(Protocol):
    """Admits one request at a time into a budget, waiting while the budget is spent."""

    async def acquire(self) -> None:
        """Wait until one more request fits, then count it."""
        ...


class SlidingWindowLimiter:
    """Allows at most `max_requests` acquisitions in any `window_seconds` span (one process)."""

    def __init__(
        self,
        max_requests: int,
        window_seconds: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if max_requests < 1:
            raise ValueError("max_requests must be >= 1")
        self._max = max_requests
        self._window = window_seconds
        self._clock = clock
        self._sleep = sleep
        self._stamps: deque[float] = deque()
        self._lock = asyncio.Lock()

    def _prune(self, now: float) -> None:
        while self._stamps and self._stamps[0] <= now - self._window:
            self._stamps.popleft()

    @property
    def in_window(self) -> int:
        """Acquisitions within the current window."""
        self._prune(self._clock())
        return len(self._stamps)

    async def acquire(self) -> None:
        """Wait until one more request fits in the window, then count it."""
        # The lock keeps waiters in arrival order, so no request starves.
        async with self._lock:
            while True:
                now = self._clock()
                self._prune(now)
                if len(self._stamps) < self._max:
                    self._stamps.append(now)
                    return
                await self._sleep(self._stamps[0] + self._window - now)


class SharedWindowLimiter:
    """At most `max_requests` in any `window_seconds` span across every replica sharing `cache`.

    Requests are counted in small time slots (one counter per slot in the cache). A request
    first adds itself to its slot, then sums the slots that can still fall inside a window; over
    the budget, it takes itself back out and waits. Counting before checking is what keeps two
    replicas from both taking the last place: the later one always sees the earlier one.
    The sum spans one slot more than the window, so the budget holds for every window, at the
    price of admitting a little less than the full rate.
    """

    def __init__(
        self,
        cache: Cache,
        key: str,
        max_requests: int,
        window_seconds: float = 60.0,
        *,
        slot_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if max_requests < 1:
            raise ValueError("max_requests must be >= 1")
        if not 0 < slot_seconds <= window_seconds:
            raise ValueError("slot_seconds must be in (0, window_seconds]")
        self._cache = cache
        self._key = key
        self._max = max_requests
        self._slot = slot_seconds
        self._slots = math.ceil(window_seconds / slot_seconds) + 1
        # Replicas agree on slot numbers only through a shared clock: the wall clock.
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()

    def _slot_key(self, index: int) -> str:
        return f"rate:{self._key}:{index}"

    async def acquire(self) -> None:
        """Wait until one more request fits in the shared window, then count it."""
        ttl = (self._slots + 1) * self._slot
        # Local waiters queue here, so one process never races itself for the same place.
        async with self._lock:
            while True:
                now = self._clock()
                current = math.floor(now / self._slot)
                await self._cache.incr(self._slot_key(current), ttl)
                indexes = range(current - self._slots + 1, current + 1)
                counts = [
                    int(raw) if raw is not None else 0
                    for raw in await self._cache.get_many([self._slot_key(i) for i in indexes])
                ]
                if sum(counts) <= self._max:
                    return
                await self._cache.incr(self._slot_key(current), ttl, amount=-1)
                # Wait until the oldest counted slot leaves the span (at least a moment).
                oldest = next((i for i, c in zip(indexes, counts, strict=True) if c > 0), current)
                leaves = (oldest + self._slots) * self._slot
                await self._sleep(max(leaves - now, self._slot / 10))
