"""A queue of (deadline, slot) timers, popped when due: the expiries and the re-arm times.

Most timers are far ahead (expiries), so they live in one sorted pair of numpy arrays read from
a cursor (12 bytes a timer); a push goes to a small heap of packed ints (44 bytes) that is merged
into the arrays when it grows past an eighth of them (amortised O(log n) a push). Entries are
never removed in place: the owner keeps each slot's current deadline in an int64 array and a
popped entry counts only if it still matches, so changing or dropping a timer is just writing
that array. Merges drop the entries that no longer match, which bounds the garbage."""

from __future__ import annotations

import heapq
from array import array

import numpy as np
import numpy.typing as npt

# Merge the heap into the arrays when it holds more than this, or an eighth of the arrays.
_MIN_MERGE = 4096
# Slots are int32, so a deadline shifted past them leaves the low bits for the slot.
_SLOT_BITS = 32
_SLOT_MASK = (1 << _SLOT_BITS) - 1


class TimerQueue:
    """Deadlines in microseconds per slot, validated against the owner's `deadlines` array."""

    __slots__ = ("_deadlines", "_head", "_recent", "_slots", "_times")

    def __init__(self, deadlines: array[int]) -> None:
        self._deadlines = deadlines
        self._times: npt.NDArray[np.int64] = np.empty(0, np.int64)
        self._slots: npt.NDArray[np.int32] = np.empty(0, np.int32)
        self._head = 0
        self._recent: list[int] = []

    def __len__(self) -> int:
        """Entries held, including ones that no longer match their slot's deadline."""
        return len(self._times) - self._head + len(self._recent)

    def push(self, deadline: int, slot: int) -> None:
        """Set a timer (the owner has written `deadline` to its array for `slot`)."""
        heapq.heappush(self._recent, (deadline << _SLOT_BITS) | slot)
        if len(self._recent) > max(_MIN_MERGE, (len(self._times) - self._head) // 8):
            self._merge()

    def pop_due(self, now: int) -> list[int]:
        """Slots whose timer is at or before `now` and still matches their deadline."""
        due: list[int] = []
        if self._head < len(self._times) and self._times[self._head] <= now:
            end = int(np.searchsorted(self._times, now, side="right"))
            due.extend(self._slots[self._head : end].tolist())
            due_times = self._times[self._head : end].tolist()
            self._head = end
            if self._head > len(self._times) // 2:
                self._times, self._slots = self._times[end:].copy(), self._slots[end:].copy()
                self._head = 0
        else:
            due_times = []
        recent = self._recent
        while recent and recent[0] >> _SLOT_BITS <= now:
            packed = heapq.heappop(recent)
            due.append(packed & _SLOT_MASK)
            due_times.append(packed >> _SLOT_BITS)
        deadlines = self._deadlines
        # dict.fromkeys: the same timer set twice (an update that kept it) pops once.
        return list(
            dict.fromkeys(s for s, t in zip(due, due_times, strict=True) if deadlines[s] == t)
        )

    def _merge(self) -> None:
        recent = self._recent
        parts_t = [
            self._times[self._head :],
            np.array([p >> _SLOT_BITS for p in recent], np.int64),
        ]
        parts_s = [
            self._slots[self._head :],
            np.array([p & _SLOT_MASK for p in recent], np.int32),
        ]
        times, slots = np.concatenate(parts_t), np.concatenate(parts_s)
        if len(times):
            # A temporary view of the owner's array: kept, it would stop the array growing.
            current = np.frombuffer(self._deadlines, dtype=np.int64)
            live = current[slots] == times
            del current
            times, slots = times[live], slots[live]
        order = np.argsort(times, kind="stable")
        self._times, self._slots = times[order], slots[order]
        self._head = 0
        self._recent = []
