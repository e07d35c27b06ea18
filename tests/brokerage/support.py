"""Virtual time for connector tests: a clock and a sleep that only move together, so retries,
backoff and rate limits are asserted on numbers, never on wall-clock waits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


class VirtualTime:
    """A Clock (now()), a monotonic reading and an async sleep on one virtual timeline."""

    def __init__(self, start: datetime = START) -> None:
        self._start = start
        self.elapsed = 0.0
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        """The current virtual instant (aware, UTC)."""
        return self._start + timedelta(seconds=self.elapsed)

    def monotonic(self) -> float:
        """Virtual seconds since the start."""
        return self.elapsed

    def wall(self) -> float:
        """The virtual instant as epoch seconds."""
        return self.now().timestamp()

    async def sleep(self, seconds: float) -> None:
        """Record the sleep and move time forward by it, at once."""
        self.sleeps.append(seconds)
        self.elapsed += max(0.0, seconds)

    def advance(self, delta: timedelta) -> None:
        """Move time forward without a sleep."""
        self.elapsed += delta.total_seconds()
