"""The indexed condition engine: a tick costs O(channels * log n + candidates), not a scan.

Each alert is a slot in parallel arrays (level, shape, frequency, cooldown, re-arm and expiry
times, flags) and is filed by (symbol, channel, shape) in a SortedLevels set. A tick moving a
channel from p0 to p1 reads only what the move can change:

- crossings: the levels between p0 and p1 are exactly the ones crossed;
- thresholds: the levels between p0 and p1 are the ones that started to hold. Alerts that held
  already and may fire are kept in the channel's `pending` set (armed alerts holding at the
  channel's last value), re-proposed on every tick while they hold and dropped when they stop:
  each of them is a candidate, so they cost what they output;
- alerts waiting out a cooldown or the trading day rest on a timer queue and are re-armed when
  due (on a tick or expire_due), joining `pending` if they hold at that moment: holding alerts
  are never rescanned;
- expiries are another timer queue, so they happen on time without quotes.

A channel's first reading ever has no p0: every level that holds is read once."""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from datetime import datetime

import numpy as np

from optix_server.alert.conditions import Frequency, Tick
from optix_server.alert.engine.channels import (
    ChannelKey,
    Shape,
    Source,
    classify,
    holds,
    read,
)
from optix_server.alert.engine.history import DEFAULT_MAX_SAMPLES, WindowHistories
from optix_server.alert.engine.levels import SortedLevels
from optix_server.alert.engine.spec import AlertSpec, Candidate
from optix_server.alert.engine.timers import TimerQueue
from optix_server.alert.engine.timing import (
    NEVER,
    duration_micros,
    next_eligible,
    to_micros,
)
from optix_server.common.exchange_calendar import ExchangeCalendar, us_options_calendar

# Slot flags (a bytearray): the alert waits for its re-arm time; it is a crossing that has not
# seen a value since it was added (its first value only records the side).
_RESTING, _FRESH = 1, 2
_FREQUENCIES = list(Frequency)
_FREQUENCY_CODES = {frequency: code for code, frequency in enumerate(_FREQUENCIES)}
_SHAPES = list(Shape)


class _Channel:
    """The alerts of one symbol that read one channel, and that channel's last value."""

    __slots__ = ("count", "fresh", "key", "last", "pending", "sets", "symbol")

    def __init__(self, symbol: str, key: ChannelKey) -> None:
        self.symbol = symbol
        self.key = key
        self.sets: dict[Shape, SortedLevels] = {}
        self.last: float | None = None
        self.pending: set[int] = set()
        self.fresh: list[int] = []
        self.count = 0


class AlertIndex:
    """The indexed engine (see the package docstring for the contract)."""

    def __init__(
        self, max_samples: int = DEFAULT_MAX_SAMPLES, calendar: ExchangeCalendar | None = None
    ) -> None:
        self._calendar = calendar or us_options_calendar()
        self._max_samples = max_samples
        self._clock = 0
        self._reset()

    def _reset(self) -> None:
        self._histories = WindowHistories(self._max_samples)
        self._books: dict[str, dict[ChannelKey, _Channel]] = {}
        self._slot_of: dict[str, int] = {}
        self._free: list[int] = []
        # Alert id per slot ("" for a free slot).
        self._ids: list[str] = []
        self._channel: list[_Channel | None] = []
        self._level: array[float] = array("d")
        self._shape = bytearray()
        self._frequency = bytearray()
        self._flags = bytearray()
        self._cooldown: array[int] = array("q")
        self._rearm_at: array[int] = array("q")
        self._expire_at: array[int] = array("q")
        self._rearms = TimerQueue(self._rearm_at)
        self._expiries = TimerQueue(self._expire_at)
        self._expired: list[str] = []

    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, alert_id: object) -> bool:
        return alert_id in self._slot_of

    # Changes -------------------------------------------------------------------------------

    def add(self, spec: AlertSpec) -> None:
        """Start evaluating an alert; one already held is replaced with a fresh side."""
        self.remove(spec.alert_id)
        self._insert(spec)

    def update(self, spec: AlertSpec) -> None:
        """Apply new settings, keeping the crossing side unless what is watched changed."""
        slot = self._slot_of.get(spec.alert_id)
        if slot is None:
            self._insert(spec)
            return
        channel = self._channel[slot]
        assert channel is not None
        key, shape = classify(spec.condition)
        if (channel.symbol, channel.key, shape, spec.condition.level) != (
            spec.symbol,
            key,
            self._shape[slot],
            self._level[slot],
        ):
            self.add(spec)
            return
        self._frequency[slot] = _FREQUENCY_CODES[spec.frequency]
        self._cooldown[slot] = duration_micros(spec.cooldown)
        self._set_expiry(slot, spec.expire_time)
        self._set_rearm(slot, self._eligible_from(slot, spec.last_fire_time))

    def remove(self, alert_id: str) -> bool:
        """Stop evaluating an alert; False if it was not held."""
        slot = self._slot_of.pop(alert_id, None)
        if slot is None:
            return False
        channel = self._channel[slot]
        assert channel is not None
        shape = _SHAPES[self._shape[slot]]
        levels = channel.sets[shape]
        levels.discard(self._level[slot], slot)
        if not levels:
            del channel.sets[shape]
        channel.pending.discard(slot)
        channel.count -= 1
        if channel.count == 0:
            book = self._books[channel.symbol]
            del book[channel.key]
            if not book:
                del self._books[channel.symbol]
        if channel.key.source is Source.MOVE_OVER_WINDOW:
            assert channel.key.price_type is not None
            self._histories.unwatch(channel.symbol, channel.key.price_type, channel.key.window)
        self._ids[slot] = ""
        self._channel[slot] = None
        self._flags[slot] = 0
        # Stale timer entries for the slot stop matching (timers.py).
        self._rearm_at[slot] = NEVER
        self._expire_at[slot] = NEVER
        self._free.append(slot)
        return True

    def replace_all(self, specs: Iterable[AlertSpec]) -> None:
        """Hold exactly these alerts, with fresh state, bulk-loading the level sets."""
        self._reset()
        staged: dict[tuple[_Channel, Shape], tuple[array[float], array[int]]] = {}
        for spec in specs:
            if spec.alert_id in self._slot_of:
                raise ValueError(f"alert {spec.alert_id!r} listed twice")
            self._insert(spec, staged)
        for (channel, shape), (levels, slots) in staged.items():
            channel.sets[shape] = SortedLevels.build(
                np.frombuffer(levels, np.float64), np.frombuffer(slots, np.int32)
            )

    # Ticks and time ------------------------------------------------------------------------

    def evaluate(self, tick: Tick) -> list[Candidate]:
        """Advance to the tick's time, then propose the alerts its values make fire."""
        self._advance(to_micros(tick.time))
        self._histories.record(tick)
        book = self._books.get(tick.symbol)
        found: list[Candidate] = []
        if book is None:
            return found
        for channel in book.values():
            reading = read(channel.key, tick, self._histories)
            if reading is not None:
                self._step(channel, reading.value, reading.observed, reading.reference, found)
        return found

    def mark_fired(self, alert_id: str, fire_time: datetime) -> None:
        """Record a firing: ONCE alerts leave, the others rest until next eligible."""
        slot = self._slot_of.get(alert_id)
        if slot is None:
            return
        if _FREQUENCIES[self._frequency[slot]] is Frequency.ONCE:
            self.remove(alert_id)
            return
        self._set_rearm(slot, self._eligible_from(slot, fire_time))

    def expire_due(self, now: datetime) -> list[str]:
        """Advance to `now`; the alerts that expired since the last call (they are dropped)."""
        self._advance(to_micros(now))
        expired, self._expired = self._expired, []
        return expired

    def _advance(self, now: int) -> None:
        self._clock = clock = max(self._clock, now)
        for slot in self._expiries.pop_due(clock):
            alert_id = self._ids[slot]
            self._expired.append(alert_id)
            self.remove(alert_id)
        for slot in self._rearms.pop_due(clock):
            self._set_rearm(slot, 0)

    def _step(
        self,
        channel: _Channel,
        value: float,
        observed: float,
        reference: float | None,
        found: list[Candidate],
    ) -> None:
        """Move `channel` to `value`, appending the candidates of that move to `found`."""
        previous = channel.last
        ids, levels, shapes, flags = self._ids, self._level, self._shape, self._flags
        pending = channel.pending
        for slot in list(pending):
            if holds(_SHAPES[shapes[slot]], value, levels[slot]):
                found.append(Candidate(ids[slot], observed, reference))
            else:
                pending.discard(slot)
        for shape, level_set in channel.sets.items():
            if not shape.crossing:
                for slot in _started_to_hold(level_set, shape, previous, value):
                    if not flags[slot] & _RESTING:
                        pending.add(slot)
                        found.append(Candidate(ids[slot], observed, reference))
            elif previous is not None:
                for slot in _crossed(level_set, shape, previous, value):
                    if not flags[slot] & (_RESTING | _FRESH):
                        found.append(Candidate(ids[slot], observed, previous))
        for slot in channel.fresh:
            if self._channel[slot] is channel:
                flags[slot] &= ~_FRESH
        channel.fresh.clear()
        channel.last = value

    # Slots ---------------------------------------------------------------------------------

    def _insert(
        self,
        spec: AlertSpec,
        staged: dict[tuple[_Channel, Shape], tuple[array[float], array[int]]] | None = None,
    ) -> None:
        key, shape = classify(spec.condition)
        book = self._books.setdefault(spec.symbol, {})
        channel = book.get(key)
        if channel is None:
            channel = book[key] = _Channel(spec.symbol, key)
        channel.count += 1
        if key.source is Source.MOVE_OVER_WINDOW:
            assert key.price_type is not None
            self._histories.watch(spec.symbol, key.price_type, key.window)
        level = spec.condition.level
        slot = self._allocate(spec.alert_id, channel, level, shape, spec)
        if staged is None:
            level_set = channel.sets.get(shape)
            if level_set is None:
                level_set = channel.sets[shape] = SortedLevels()
            level_set.add(level, slot)
        else:
            levels, slots = staged.setdefault((channel, shape), (array("d"), array("i")))
            levels.append(level)
            slots.append(slot)
        # A crossing's first value records its side; with no channel value yet the channel's
        # first reading (which has no p0) does that for every alert.
        if shape.crossing and channel.last is not None:
            self._flags[slot] |= _FRESH
            channel.fresh.append(slot)
        self._set_expiry(slot, spec.expire_time)
        self._set_rearm(slot, self._eligible_from(slot, spec.last_fire_time))

    def _allocate(
        self, alert_id: str, channel: _Channel, level: float, shape: Shape, spec: AlertSpec
    ) -> int:
        frequency = _FREQUENCY_CODES[spec.frequency]
        cooldown = duration_micros(spec.cooldown)
        if self._free:
            slot = self._free.pop()
            self._ids[slot] = alert_id
            self._channel[slot] = channel
            self._level[slot] = level
            self._shape[slot] = shape
            self._frequency[slot] = frequency
            self._flags[slot] = 0
            self._cooldown[slot] = cooldown
        else:
            slot = len(self._ids)
            self._ids.append(alert_id)
            self._channel.append(channel)
            self._level.append(level)
            self._shape.append(shape)
            self._frequency.append(frequency)
            self._flags.append(0)
            self._cooldown.append(cooldown)
            self._rearm_at.append(NEVER)
            self._expire_at.append(NEVER)
        self._slot_of[alert_id] = slot
        return slot

    def _eligible_from(self, slot: int, last_fire: datetime | None) -> int:
        return next_eligible(
            _FREQUENCIES[self._frequency[slot]],
            self._cooldown[slot],
            None if last_fire is None else to_micros(last_fire),
            self._calendar,
        )

    def _set_expiry(self, slot: int, expire_time: datetime | None) -> None:
        if expire_time is None:
            self._expire_at[slot] = NEVER
            return
        self._expire_at[slot] = deadline = to_micros(expire_time)
        self._expiries.push(deadline, slot)

    def _set_rearm(self, slot: int, eligible: int) -> None:
        """Rest the slot until `eligible`, or arm it now if that has come (joining `pending`
        when it is a threshold holding at its channel's last value)."""
        channel = self._channel[slot]
        assert channel is not None
        if eligible > self._clock:
            self._flags[slot] |= _RESTING
            self._rearm_at[slot] = eligible
            self._rearms.push(eligible, slot)
            channel.pending.discard(slot)
            return
        self._flags[slot] &= ~_RESTING
        self._rearm_at[slot] = NEVER
        shape = _SHAPES[self._shape[slot]]
        if (
            not shape.crossing
            and channel.last is not None
            and holds(shape, channel.last, self._level[slot])
        ):
            channel.pending.add(slot)


def _started_to_hold(
    level_set: SortedLevels, shape: Shape, previous: float | None, value: float
) -> list[int]:
    """Slots of a threshold shape that hold at `value` but did not at `previous`."""
    if shape is Shape.ABOVE:  # value > level: levels in [previous, value)
        if previous is None:
            return level_set.slots_between(None, value, low_open=False, high_open=True)
        if value <= previous:
            return []
        return level_set.slots_between(previous, value, low_open=False, high_open=True)
    if shape is Shape.BELOW:  # value < level: levels in (value, previous]
        if previous is None:
            return level_set.slots_between(value, None, low_open=True, high_open=False)
        if value >= previous:
            return []
        return level_set.slots_between(value, previous, low_open=True, high_open=False)
    # AT_LEAST, value >= level: levels in (previous, value]
    if previous is None:
        return level_set.slots_between(None, value, low_open=False, high_open=False)
    if value <= previous:
        return []
    return level_set.slots_between(previous, value, low_open=True, high_open=False)


def _crossed(level_set: SortedLevels, shape: Shape, previous: float, value: float) -> list[int]:
    """Slots of a crossing shape whose level the move from `previous` to `value` crossed."""
    if value > previous and shape is not Shape.CROSS_DOWN:  # previous < level <= value
        return level_set.slots_between(previous, value, low_open=True, high_open=False)
    if value < previous and shape is not Shape.CROSS_UP:  # value <= level < previous
        return level_set.slots_between(value, previous, low_open=False, high_open=True)
    return []
