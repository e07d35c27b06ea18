"""Values computed once per key per market update and shared by every request in that update.

A key (an underlying) holds at most one value: the one for the newest update computed so far.
Requests for an update that is being computed wait on that one computation (single-flight);
a computation for an older update than one already requested is handed to its own waiters but
never stored, so no request that arrives after a newer update sees an older one's value. The
values are bounded in memory: least recently used keys are evicted past `max_bytes`.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

V = TypeVar("V")


@dataclass
class CacheStats:
    """Counts of how requests were answered, for benchmarks and operators."""

    hits: int = 0
    joined: int = 0
    computed: int = 0
    evicted: int = 0

    @property
    def requests(self) -> int:
        """All requests answered."""
        return self.hits + self.joined + self.computed

    @property
    def hit_ratio(self) -> float:
        """Share of requests answered without a computation of their own."""
        return (self.hits + self.joined) / self.requests if self.requests else 0.0


@dataclass(frozen=True, slots=True)
class _Entry(Generic[V]):
    version: int
    value: V
    size: int


class UpdateCache(Generic[V]):
    """Per-key values of the newest market update, single-flight, LRU-bounded by bytes."""

    def __init__(self, max_bytes: int, size: Callable[[V], int]) -> None:
        self._max_bytes = max_bytes
        self._size = size
        self._entries: OrderedDict[str, _Entry[V]] = OrderedDict()
        # In-progress computations by key and update (only while they run: bounded).
        self._flights: dict[str, dict[int, asyncio.Task[V]]] = {}
        self._bytes = 0
        self.stats = CacheStats()

    @property
    def bytes_held(self) -> int:
        """Total size of the stored values."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def peek(self, key: str) -> V | None:
        """The stored value of `key` whatever its update (no recency change), or None."""
        entry = self._entries.get(key)
        return entry.value if entry is not None else None

    async def get(self, key: str, version: int | None, compute: Callable[[], Awaitable[V]]) -> V:
        """The value of `key` at update `version` (or a newer one already stored), computed
        once for all concurrent callers; `version` None means the source cannot tell its
        updates apart, so every call computes afresh."""
        if version is None:
            self.stats.computed += 1
            return await compute()
        entry = self._entries.get(key)
        if entry is not None and entry.version >= version:
            self._entries.move_to_end(key)
            self.stats.hits += 1
            return entry.value
        flights = self._flights.setdefault(key, {})
        flight = flights.get(version)
        if flight is None:
            self.stats.computed += 1
            flight = asyncio.get_running_loop().create_task(self._run(key, version, compute))
            # A failure nobody awaited any more (every caller cancelled) is not an error.
            flight.add_done_callback(lambda t: t.cancelled() or t.exception())
            flights[version] = flight
        else:
            self.stats.joined += 1
        # Shielded: a caller that gives up (deadline, cancel) leaves the others their result.
        return await asyncio.shield(flight)

    async def _run(self, key: str, version: int, compute: Callable[[], Awaitable[V]]) -> V:
        try:
            value = await compute()
        finally:
            flights = self._flights[key]
            del flights[version]
            if not flights:
                del self._flights[key]
        # A newer update already requested (still computing) supersedes this one: stored, it
        # would be served to requests of that newer update.
        if not any(v > version for v in self._flights.get(key, ())):
            self._store(key, version, value)
        return value

    def _store(self, key: str, version: int, value: V) -> None:
        stored = self._entries.get(key)
        if stored is not None and stored.version >= version:
            return
        size = self._size(value)
        self._discard(key)
        if size > self._max_bytes:
            return  # served to its waiters, but it alone would break the bound
        self._entries[key] = _Entry(version, value, size)
        self._bytes += size
        while self._bytes > self._max_bytes:
            oldest = next(iter(self._entries))
            self._discard(oldest)
            self.stats.evicted += 1

    def _discard(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry.size
