"""A sliding-window request limiter (e.g. Schwab's 120 requests per minute)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable


class SlidingWindowLimiter:
    """Allows at most `max_requests` acquisitions in any `window_seconds` span."""

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
