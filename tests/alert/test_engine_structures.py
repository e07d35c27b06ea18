"""The alert engine's building blocks against plain models: the sorted level sets, the timer
queues and the rolling price windows."""

from __future__ import annotations

from array import array
from unittest import mock

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from optix_server.alert.engine import levels as levels_module
from optix_server.alert.engine import timers as timers_module
from optix_server.alert.engine.history import PriceSeries
from optix_server.alert.engine.levels import SortedLevels
from optix_server.alert.engine.timers import TimerQueue
from optix_server.alert.engine.timing import NEVER

LEVELS = st.sampled_from([1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0])
BOUND = st.one_of(st.none(), st.sampled_from([0.5, 1.0, 1.25, 2.0, 2.5, 3.0, 4.0, 4.5]))
# (operation, level or low bound, high bound, slot, low open, high open)
LevelOp = tuple[str, float | None, float | None, int, bool, bool]
LEVEL_OPS = st.lists(
    st.tuples(
        st.sampled_from(["add", "discard", "query"]),
        BOUND,
        BOUND,
        st.integers(0, 40),
        st.booleans(),
        st.booleans(),
    ),
    max_size=150,
)


def _between(
    model: list[tuple[float, int]],
    low: float | None,
    high: float | None,
    low_open: bool,
    high_open: bool,
) -> list[int]:
    def inside(level: float) -> bool:
        above = low is None or (level > low if low_open else level >= low)
        below = high is None or (level < high if high_open else level <= high)
        return above and below

    return [slot for level, slot in sorted(model) if inside(level)]


@settings(max_examples=150, deadline=None)
@given(ops=LEVEL_OPS, bulk=st.lists(st.tuples(LEVELS, st.integers(41, 60)), unique=True))
def test_sorted_levels_match_a_sorted_list(
    ops: list[LevelOp], bulk: list[tuple[float, int]]
) -> None:
    # Tiny chunks, so splits, merges and ties across chunk boundaries all happen.
    with mock.patch.object(levels_module, "CHUNK", 2):
        levels = SortedLevels.build(
            np.array([lv for lv, _ in bulk], np.float64), np.array([s for _, s in bulk], np.int32)
        )
        model = list(bulk)
        for op, low, high, slot, low_open, high_open in ops:
            if op == "query":
                found = levels.slots_between(low, high, low_open=low_open, high_open=high_open)
                assert found == _between(model, low, high, low_open, high_open)
            elif low is None:
                continue
            elif op == "add" and (low, slot) not in model:
                levels.add(low, slot)
                model.append((low, slot))
            elif op == "discard":
                assert levels.discard(low, slot) == ((low, slot) in model)
                if (low, slot) in model:
                    model.remove((low, slot))
            assert list(levels) == sorted(model)
            assert len(levels) == len(model)


TIMER_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("set"), st.integers(0, 9), st.integers(0, 50)),
        st.tuples(st.just("cancel"), st.integers(0, 9), st.just(0)),
        st.tuples(st.just("pop"), st.just(0), st.integers(0, 10)),
    ),
    max_size=120,
)


@settings(max_examples=150, deadline=None)
@given(ops=TIMER_OPS)
def test_timer_queue_pops_exactly_the_due_current_deadlines(
    ops: list[tuple[str, int, int]],
) -> None:
    # A tiny merge threshold, so most pushes go through the sorted arrays too.
    with mock.patch.object(timers_module, "_MIN_MERGE", 2):
        deadlines: array[int] = array("q", [NEVER] * 10)
        queue = TimerQueue(deadlines)
        now = 0
        for op, slot, value in ops:
            if op == "set":
                deadlines[slot] = now + value
                queue.push(now + value, slot)
            elif op == "cancel":
                deadlines[slot] = NEVER
            else:
                now += value
                due = queue.pop_due(now)
                assert sorted(due) == [s for s in range(10) if deadlines[s] <= now]
                for s in due:
                    deadlines[s] = NEVER


@settings(max_examples=100, deadline=None)
@given(
    steps=st.lists(st.tuples(st.integers(0, 40), st.sampled_from([1.0, 2.0, 3.0])), max_size=80),
    windows=st.lists(st.sampled_from([10, 25, 60]), min_size=1, max_size=3),
)
def test_price_series_reference_is_the_latest_sample_a_window_back(
    steps: list[tuple[int, float]], windows: list[int]
) -> None:
    series = PriceSeries(max_samples=10_000)
    for window in windows:
        series.watch(window)
    full: list[tuple[int, float]] = []
    time = 0
    for advance, price in steps:
        time += advance
        series.append(time, price)
        full.append((time, price))
        for window in windows:
            before = [p for t, p in full if t <= time - window]
            assert series.reference(time, window) == (before[-1] if before else None)


def test_price_series_keeps_only_the_longest_window_and_the_cap() -> None:
    series = PriceSeries(max_samples=3)
    series.watch(100)
    for time in range(0, 1000, 10):
        series.append(time, float(time))
    # The cap of three samples leaves 970..990: nothing reaches back 100 from 990.
    assert series.samples() == [(970, 970.0), (980, 980.0), (990, 990.0)]
    assert series.reference(990, 100) is None
    roomy = PriceSeries(max_samples=1000)
    roomy.watch(100)
    for time in range(0, 1000, 10):
        roomy.append(time, float(time))
    # Back to the latest sample at or before 990 - 100, no further.
    assert roomy.samples()[0] == (890, 890.0)
    assert roomy.reference(990, 100) == 890.0
    assert roomy.reference(995, 100) == 890.0
    # Older quotes do not unsort the window.
    roomy.append(500, 1.0)
    assert roomy.samples()[-1] == (990, 990.0)
