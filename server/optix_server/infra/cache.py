"""Key-value cache with TTLs: one protocol, an in-process implementation and a Redis one."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol, TypeVar, cast

from redis.asyncio import Redis

T = TypeVar("T")

# Python 3.11's asyncio.wait_for returns the inner result (or raises its error) and drops a
# cancellation of the calling task when both land in the same loop turn (CPython gh-86296,
# fixed in 3.12). redis-py sends every command through wait_for (its socket timeout defaults
# to 5 s), so a task cancelled while a command was being sent carried on as if it never was:
# the feed owner's loop outlived FeedPublisher.stop(), which then waited for it forever, and
# `optix serve` never exited after SIGTERM.
_WAIT_FOR_LOSES_CANCELS = sys.version_info < (3, 12)


def reraise_lost_cancellation() -> None:
    """After a Redis call: raise CancelledError when the current task was cancelled while the
    call ran and the cancellation got lost on the way (see _WAIT_FOR_LOSES_CANCELS)."""
    if not _WAIT_FOR_LOSES_CANCELS:
        return
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class Cache(Protocol):
    """A shared key-value cache. Values are bytes; TTLs are in seconds."""

    async def get(self, key: str) -> bytes | None:
        """The value of `key`, or None when absent or expired."""
        ...

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Values for `keys`, in order, None where absent."""
        ...

    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        """Store `value` under `key`, expiring after `ttl_seconds` when given."""
        ...

    async def set_many(self, items: Mapping[str, bytes], ttl_seconds: float | None = None) -> None:
        """Store every value of `items` under its key (one round trip where shared)."""
        ...

    async def delete(self, key: str) -> None:
        """Remove `key` if present."""
        ...

    async def incr(self, key: str, ttl_seconds: float, amount: int = 1) -> int:
        """Atomically add `amount` (default 1, may be negative) to a counter; the first change
        starts its TTL. Returns the new count."""
        ...

    async def ttl(self, key: str) -> float | None:
        """Seconds until `key` expires; None when absent or without expiry."""
        ...

    async def hold(self, key: str, holder: str, ttl_seconds: float) -> bool:
        """Atomically hold `key` for `holder` for `ttl_seconds`: True when it was free or
        already `holder`'s (the hold is extended), False while someone else holds it."""
        ...

    async def let_go(self, key: str, holder: str) -> None:
        """End `holder`'s hold on `key` now (nothing if another holder has it)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class InMemoryCache:
    """Process-local cache for the embedded default (single replica)."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, max_entries: int = 100_000
    ) -> None:
        self._clock = clock
        self._max_entries = max_entries
        self._data: dict[str, tuple[bytes, float | None]] = {}

    def _make_room(self) -> None:
        # Bounded so a flood of distinct keys (e.g. failed logins for random emails) cannot grow
        # memory without limit: the oldest inserted entry goes first, in O(1) (no scan, so a
        # flood cannot make every write expensive either). Expired entries also go on read.
        while len(self._data) >= self._max_entries:
            del self._data[next(iter(self._data))]

    def _live(self, key: str) -> tuple[bytes, float | None] | None:
        item = self._data.get(key)
        if item is None:
            return None
        expires = item[1]
        if expires is not None and expires <= self._clock():
            del self._data[key]
            return None
        return item

    async def get(self, key: str) -> bytes | None:
        """The value of `key`, or None when absent or expired."""
        item = self._live(key)
        return None if item is None else item[0]

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Values for `keys`, in order, None where absent."""
        return [await self.get(k) for k in keys]

    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        """Store `value` under `key`, expiring after `ttl_seconds` when given."""
        expires = None if ttl_seconds is None else self._clock() + ttl_seconds
        self._data.pop(key, None)
        self._make_room()
        self._data[key] = (value, expires)

    async def set_many(self, items: Mapping[str, bytes], ttl_seconds: float | None = None) -> None:
        """Store every value of `items` under its key."""
        for key, value in items.items():
            await self.set(key, value, ttl_seconds)

    async def delete(self, key: str) -> None:
        """Remove `key` if present."""
        self._data.pop(key, None)

    async def incr(self, key: str, ttl_seconds: float, amount: int = 1) -> int:
        """Atomically add `amount` to a counter; the first change starts its TTL."""
        item = self._live(key)
        if item is None:
            self._make_room()
            self._data[key] = (str(amount).encode(), self._clock() + ttl_seconds)
            return amount
        count = int(item[0]) + amount
        self._data[key] = (str(count).encode(), item[1])
        return count

    async def ttl(self, key: str) -> float | None:
        """Seconds until `key` expires; None when absent or without expiry."""
        item = self._live(key)
        if item is None or item[1] is None:
            return None
        return max(0.0, item[1] - self._clock())

    async def hold(self, key: str, holder: str, ttl_seconds: float) -> bool:
        """Hold `key` for `holder` (see Cache.hold)."""
        item = self._live(key)
        if item is not None and item[0] != holder.encode():
            return False
        await self.set(key, holder.encode(), ttl_seconds)
        return True

    async def let_go(self, key: str, holder: str) -> None:
        """End `holder`'s hold on `key` (see Cache.let_go)."""
        item = self._live(key)
        if item is not None and item[0] == holder.encode():
            del self._data[key]

    async def close(self) -> None:
        """Nothing to release."""
        self._data.clear()


class RedisCache:
    """Redis-backed cache shared by every replica; keys are namespaced by `prefix`.
    `on_error` hears the name of each operation that fails (the metrics count them)."""

    def __init__(
        self,
        redis: Redis,
        prefix: str = "optix:",
        *,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self._redis = redis
        self._prefix = prefix + "cache:"
        self._on_error = on_error

    async def _counted(self, operation: str, pending: Awaitable[T]) -> T:
        try:
            result = await pending
        except Exception:
            if self._on_error is not None:
                self._on_error(operation)
            reraise_lost_cancellation()
            raise
        reraise_lost_cancellation()
        return result

    async def get(self, key: str) -> bytes | None:
        """The value of `key`, or None when absent or expired."""
        return cast("bytes | None", await self._counted("get", self._redis.get(self._prefix + key)))

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Values for `keys`, in order, None where absent."""
        if not keys:
            return []
        values = await self._counted("get_many", self._redis.mget([self._prefix + k for k in keys]))
        return cast("list[bytes | None]", values)

    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        """Store `value` under `key`, expiring after `ttl_seconds` when given."""
        px = None if ttl_seconds is None else max(1, int(ttl_seconds * 1000))
        await self._counted("set", self._redis.set(self._prefix + key, value, px=px))

    async def set_many(self, items: Mapping[str, bytes], ttl_seconds: float | None = None) -> None:
        """Store every value of `items` under its key in one pipelined round trip."""
        if not items:
            return
        await self._counted("set_many", self._set_many(items, ttl_seconds))

    async def _set_many(self, items: Mapping[str, bytes], ttl_seconds: float | None) -> None:
        px = None if ttl_seconds is None else max(1, int(ttl_seconds * 1000))
        async with self._redis.pipeline(transaction=False) as pipe:
            for key, value in items.items():
                pipe.set(self._prefix + key, value, px=px)
            await pipe.execute()

    async def delete(self, key: str) -> None:
        """Remove `key` if present."""
        await self._counted("delete", self._redis.delete(self._prefix + key))

    async def incr(self, key: str, ttl_seconds: float, amount: int = 1) -> int:
        """Atomically add `amount` to a counter; the first change starts its TTL."""
        return await self._counted("incr", self._incr(key, ttl_seconds, amount))

    async def _incr(self, key: str, ttl_seconds: float, amount: int) -> int:
        full = self._prefix + key
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incrby(full, amount)
            # NX: only the first increment sets the expiry, so the window is fixed, not sliding.
            pipe.pexpire(full, max(1, int(ttl_seconds * 1000)), nx=True)
            count, _ = await pipe.execute()
        return int(count)

    async def ttl(self, key: str) -> float | None:
        """Seconds until `key` expires; None when absent or without expiry."""
        ms: int = await self._counted("ttl", self._redis.pttl(self._prefix + key))
        return None if ms < 0 else ms / 1000

    async def hold(self, key: str, holder: str, ttl_seconds: float) -> bool:
        """Hold `key` for `holder` (see Cache.hold): one atomic script, so two replicas can
        never both believe they hold it."""
        px = max(1, int(ttl_seconds * 1000))
        script = self._redis.eval(_HOLD, 1, self._prefix + key, holder, px)  # type: ignore[misc]
        return bool(await self._counted("hold", script))

    async def let_go(self, key: str, holder: str) -> None:
        """End `holder`'s hold on `key` (see Cache.let_go)."""
        script = self._redis.eval(_LET_GO, 1, self._prefix + key, holder)  # type: ignore[misc]
        await self._counted("let_go", script)

    async def close(self) -> None:
        """Close the Redis connection pool."""
        await self._redis.aclose()


# KEYS[1] = key, ARGV[1] = holder, ARGV[2] = TTL in ms.
_HOLD = """
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
_LET_GO = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""
