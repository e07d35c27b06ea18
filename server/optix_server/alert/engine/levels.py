"""A sorted multiset of (level, slot) pairs: the levels of one condition shape on one channel.

Stored as chunks of two parallel `array.array`s (8 + 4 bytes a pair, no Python object per
alert), ordered by (level, slot), with each chunk's last pair in a short list to bisect. A range
query costs O(log n + pairs returned); an insert or delete O(log n + CHUNK), where CHUNK bounds
the memmove inside one chunk. The same layout as sortedcontainers' SortedList, with packed
arrays instead of lists of boxed floats."""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

# Target chunk length: chunks split at twice this and merge with a neighbour below a quarter.
CHUNK = 1024
# Greater than every slot (slots are non-negative int32), so (level, _PAST) sorts after every
# pair at that level, and (level, -1) before every one.
_PAST = 2**31


class SortedLevels:
    """(level, slot) pairs sorted by level then slot, queried by level ranges."""

    __slots__ = ("_keys", "_len", "_levels", "_slots")

    def __init__(self) -> None:
        self._levels: list[array[float]] = []
        self._slots: list[array[int]] = []
        # The last (level, slot) of each chunk: bisecting it finds the chunk holding a key.
        self._keys: list[tuple[float, int]] = []
        self._len = 0

    @classmethod
    def build(cls, levels: npt.NDArray[np.float64], slots: npt.NDArray[np.int32]) -> SortedLevels:
        """Bulk-load from parallel arrays in any order (the index's rebuild at start)."""
        built = cls()
        order = np.lexsort((slots, levels))
        sorted_levels = levels[order].astype(np.float64)
        sorted_slots = slots[order].astype(np.int32)
        for start in range(0, len(order), CHUNK):
            chunk_levels: array[float] = array("d")
            chunk_levels.frombytes(sorted_levels[start : start + CHUNK].tobytes())
            chunk_slots: array[int] = array("i")
            chunk_slots.frombytes(sorted_slots[start : start + CHUNK].tobytes())
            built._levels.append(chunk_levels)
            built._slots.append(chunk_slots)
            built._keys.append((chunk_levels[-1], chunk_slots[-1]))
        built._len = len(order)
        return built

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[tuple[float, int]]:
        for levels, slots in zip(self._levels, self._slots, strict=True):
            yield from zip(levels, slots, strict=True)

    def add(self, level: float, slot: int) -> None:
        """Insert the pair (duplicates of a pair are the caller's bug; they are not checked)."""
        self._len += 1
        if not self._keys:
            self._levels.append(array("d", [level]))
            self._slots.append(array("i", [slot]))
            self._keys.append((level, slot))
            return
        at = min(bisect_left(self._keys, (level, slot)), len(self._keys) - 1)
        levels, slots = self._levels[at], self._slots[at]
        position = self._position(levels, slots, level, slot)
        levels.insert(position, level)
        slots.insert(position, slot)
        self._keys[at] = (levels[-1], slots[-1])
        if len(levels) > 2 * CHUNK:
            self._split(at)

    def discard(self, level: float, slot: int) -> bool:
        """Remove the pair; False if it was not there."""
        at = bisect_left(self._keys, (level, slot))
        if at == len(self._keys):
            return False
        levels, slots = self._levels[at], self._slots[at]
        position = self._position(levels, slots, level, slot)
        if position == len(levels) or levels[position] != level or slots[position] != slot:
            return False
        del levels[position]
        del slots[position]
        self._len -= 1
        if not levels:
            del self._levels[at], self._slots[at], self._keys[at]
            return True
        self._keys[at] = (levels[-1], slots[-1])
        if len(levels) < CHUNK // 4 and len(self._keys) > 1:
            self._merge(at if at + 1 < len(self._keys) else at - 1)
        return True

    def slots_between(
        self, low: float | None, high: float | None, *, low_open: bool, high_open: bool
    ) -> list[int]:
        """Slots whose level lies between `low` and `high` (None: unbounded), each end open
        (strict) or closed as asked, in level order."""
        if low is None:
            chunk, offset = 0, 0
        else:
            chunk, offset = self._bound(low, after=low_open)
        if high is None:
            end_chunk, end_offset = len(self._keys), 0
        else:
            end_chunk, end_offset = self._bound(high, after=not high_open)
        found: list[int] = []
        while chunk < end_chunk:
            found.extend(self._slots[chunk][offset:])
            chunk, offset = chunk + 1, 0
        if chunk == end_chunk and chunk < len(self._keys) and offset < end_offset:
            found.extend(self._slots[chunk][offset:end_offset])
        return found

    def _bound(self, level: float, *, after: bool) -> tuple[int, int]:
        """(chunk, offset) of the first pair at or after `level` (past it when `after`)."""
        chunk = bisect_left(self._keys, (level, _PAST if after else -1))
        if chunk == len(self._keys):
            return chunk, 0
        levels = self._levels[chunk]
        return chunk, (bisect_right if after else bisect_left)(levels, level)

    @staticmethod
    def _position(levels: array[float], slots: array[int], level: float, slot: int) -> int:
        """Where (level, slot) sits in one chunk: bisect the level, then the slot among ties."""
        low = bisect_left(levels, level)
        high = bisect_right(levels, level, low)
        return bisect_left(slots, slot, low, high)

    def _split(self, at: int) -> None:
        levels, slots = self._levels[at], self._slots[at]
        half = len(levels) // 2
        self._levels[at : at + 1] = [levels[:half], levels[half:]]
        self._slots[at : at + 1] = [slots[:half], slots[half:]]
        self._keys[at : at + 1] = [(levels[half - 1], slots[half - 1]), (levels[-1], slots[-1])]

    def _merge(self, at: int) -> None:
        """Join chunk `at` with the next one, splitting again if that made it too long."""
        self._levels[at].extend(self._levels[at + 1])
        self._slots[at].extend(self._slots[at + 1])
        del self._levels[at + 1], self._slots[at + 1], self._keys[at + 1]
        self._keys[at] = (self._levels[at][-1], self._slots[at][-1])
        if len(self._levels[at]) > 2 * CHUNK:
            self._split(at)
