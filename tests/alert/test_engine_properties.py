"""Property tests: the indexed engine proposes exactly what the brute-force engine proposes.

Random scenarios on a small grid of prices and levels, so that ticks land exactly on levels and
oscillate around them: every condition kind and direction, all four price types, the three
frequencies with cooldowns and trading-day boundaries (the run starts at 23:30 New York, some
runs on the eve of a weekend or an exchange holiday),
expiry (some already past when added), add / update / remove between ticks, ticks without
implied volatility, delta or some price, and percent moves over windows with and without
enough history. After every step both engines must agree on the candidates (alert, observed
and reference values, exactly), on the expired alerts and on which alerts they hold; a random
subset of each tick's candidates is then marked fired, the same way in both."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from optix_server.alert.conditions import (
    DEFAULT_COOLDOWN,
    Condition,
    ConditionKind,
    Direction,
    Frequency,
    MoveBasis,
    PriceType,
    Tick,
)
from optix_server.alert.engine import AlertIndex, AlertSpec, BruteForceEngine, Candidate
from optix_server.alert.engine import levels as levels_module
from optix_server.alert.engine import timers as timers_module

# 23:30 in New York: a trading date boundary comes half an hour in.
T0 = datetime(2026, 3, 3, 4, 30, tzinfo=UTC)
# Also 23:30 on the eve of days that are not sessions (a Saturday, Good Friday 2027, Christmas
# 2026), so the trading day spans several New York dates.
STARTS = [
    T0,
    datetime(2026, 3, 7, 4, 30, tzinfo=UTC),
    datetime(2027, 3, 26, 3, 30, tzinfo=UTC),
    datetime(2026, 12, 25, 4, 30, tzinfo=UTC),
]
IDS = [f"a{i}" for i in range(24)]
PRICE_LEVELS = [99.0, 99.5, 100.0, 100.5, 101.0]
# 0.0: the quote has no such price.
TICK_PRICES = [0.0, 98.5, 99.0, 99.0, 99.5, 99.5, 100.0, 100.0, 100.5, 100.5, 101.0, 101.0, 101.5]
MINUTE = timedelta(minutes=1)
ADVANCES = [timedelta(0), timedelta(seconds=20), MINUTE, 2 * MINUTE, 5 * MINUTE, timedelta(hours=9)]

# Mostly LAST, so that alerts share channels with each other and with earlier ticks.
price_types = st.sampled_from([PriceType.LAST, PriceType.LAST, PriceType.LAST, *PriceType])
directions = st.sampled_from(list(Direction))


def _percent_move() -> st.SearchStrategy[Condition]:
    windowed = st.builds(
        lambda percent, direction, price_type, minutes: Condition(
            ConditionKind.PERCENT_MOVE,
            percent,
            direction,
            price_type,
            MoveBasis.WINDOW,
            timedelta(minutes=minutes),
        ),
        st.sampled_from([0.5, 1.0, 1.5]),
        directions,
        price_types,
        st.sampled_from([1, 2, 5]),
    )
    from_close = st.builds(
        lambda percent, direction, price_type: Condition(
            ConditionKind.PERCENT_MOVE, percent, direction, price_type, MoveBasis.PREVIOUS_CLOSE
        ),
        st.sampled_from([0.5, 1.0, 1.5]),
        directions,
        price_types,
    )
    return windowed | from_close


conditions = st.one_of(
    st.builds(
        lambda kind, level, price_type: Condition(kind, level, price_type=price_type),
        st.sampled_from([ConditionKind.PRICE_ABOVE, ConditionKind.PRICE_BELOW]),
        st.sampled_from(PRICE_LEVELS),
        price_types,
    ),
    st.builds(
        lambda level, direction, price_type: Condition(
            ConditionKind.PRICE_CROSSING, level, direction, price_type
        ),
        st.sampled_from(PRICE_LEVELS),
        directions,
        price_types,
    ),
    _percent_move(),
    st.builds(
        lambda level: Condition(ConditionKind.DAY_VOLUME_ABOVE, level),
        st.sampled_from([1000.0, 2000.0]),
    ),
    st.builds(
        Condition,
        st.sampled_from(
            [ConditionKind.IMPLIED_VOLATILITY_ABOVE, ConditionKind.IMPLIED_VOLATILITY_BELOW]
        ),
        st.sampled_from([0.2, 0.3, 0.4]),
    ),
    st.builds(
        lambda level, direction: Condition(ConditionKind.DELTA_CROSSING, level, direction),
        st.sampled_from([-0.5, 0.0, 0.3, 0.5]),
        directions,
    ),
)


@dataclass(frozen=True)
class Draft:
    """An alert to add, its times relative to the moment it is added."""

    alert_id: str
    symbol: str
    condition: Condition
    frequency: Frequency
    cooldown: timedelta
    expires_in: timedelta | None
    fired_ago: timedelta | None

    def spec(self, now: datetime) -> AlertSpec:
        """The alert as stored at `now`."""
        return AlertSpec(
            self.alert_id,
            self.symbol,
            self.condition,
            self.frequency,
            self.cooldown,
            None if self.expires_in is None else now + self.expires_in,
            None if self.fired_ago is None else now - self.fired_ago,
        )


drafts = st.builds(
    Draft,
    st.sampled_from(IDS),
    st.sampled_from(["X", "X", "X", "Y"]),
    conditions,
    st.sampled_from(list(Frequency)),
    st.sampled_from([MINUTE, 2 * MINUTE, DEFAULT_COOLDOWN]),
    st.none() | st.sampled_from([-MINUTE, timedelta(0), 3 * MINUTE, timedelta(hours=2)]),
    st.none() | st.sampled_from([timedelta(0), MINUTE, 3 * MINUTE, timedelta(hours=10)]),
)


@dataclass(frozen=True)
class AddOp:
    """add (or update) an alert."""

    draft: Draft
    update: bool


@dataclass(frozen=True)
class RemoveOp:
    """remove an alert."""

    alert_id: str


@dataclass(frozen=True)
class ExpireOp:
    """Advance time with no quote."""

    advance: timedelta


@dataclass(frozen=True)
class TickOp:
    """One quote, then mark fired the candidates picked by `fire_mask` (bit i: the i-th
    candidate by id), with their fire time `fire_lag` before the tick."""

    symbol: str
    advance: timedelta
    last: float
    mark: float
    bid: float
    ask: float
    volume: int
    previous_close: float
    iv: float | None
    delta: float | None
    fire_mask: int
    fire_lag: timedelta

    def tick(self, now: datetime) -> Tick:
        """The quote at `now`."""
        return Tick(
            self.symbol,
            now,
            self.last,
            self.mark,
            self.bid,
            self.ask,
            self.volume,
            self.previous_close,
            self.iv,
            self.delta,
        )


def _tick_op(
    symbol: str,
    advance: timedelta,
    last: float,
    mark: float,
    spread: float,
    volume: int,
    previous_close: float,
    iv: float | None,
    delta: float | None,
    fire_mask: int,
    fire_lag: timedelta,
) -> TickOp:
    # Bid and ask around the mark by half a spread; no mark, no bid or ask either.
    bid, ask = (mark - spread / 2, mark + spread / 2) if mark else (0.0, 0.0)
    return TickOp(
        symbol,
        advance,
        last,
        mark,
        bid,
        ask,
        volume,
        previous_close,
        iv,
        delta,
        fire_mask,
        fire_lag,
    )


prices = st.sampled_from(TICK_PRICES)
ticks = st.builds(
    _tick_op,
    st.sampled_from(["X", "X", "X", "Y"]),
    st.sampled_from(ADVANCES),
    prices,
    prices,
    st.sampled_from([0.0, 0.5, 1.0]),
    st.sampled_from([0, 1000, 1500, 2000, 2500]),
    st.sampled_from([0.0, 99.0, 100.0, 100.0]),
    st.sampled_from([None, 0.1, 0.2, 0.3, 0.4]),
    st.sampled_from([None, -0.5, -0.2, 0.0, 0.3, 0.5, 0.7]),
    st.integers(0, 255) | st.just(-1),  # -1: every candidate
    st.sampled_from([timedelta(0), timedelta(0), 3 * MINUTE]),
)
operations = st.one_of(
    ticks,
    ticks,
    ticks,
    ticks,
    st.builds(AddOp, drafts, st.booleans()),
    st.builds(RemoveOp, st.sampled_from(IDS)),
    st.builds(ExpireOp, st.sampled_from(ADVANCES)),
)


def _picked(candidates: list[Candidate], mask: int) -> list[Candidate]:
    return [c for i, c in enumerate(candidates) if mask == -1 or mask >> i & 1]


def _run(initial: list[Draft], ops: list[object], max_samples: int, start: datetime = T0) -> None:
    """Drive both engines through the scenario, asserting they agree after every step."""
    indexed, brute = AlertIndex(max_samples), BruteForceEngine(max_samples)
    engines = (indexed, brute)
    now = start
    for engine in engines:
        engine.replace_all([d.spec(now) for d in initial])
    for step, op in enumerate(ops):
        if isinstance(op, TickOp):
            now += op.advance
            tick = op.tick(now)
            found = [sorted(e.evaluate(tick), key=lambda c: c.alert_id) for e in engines]
            assert found[0] == found[1], f"step {step}: {op}"
            for candidate in _picked(found[0], op.fire_mask):
                for engine in engines:
                    engine.mark_fired(candidate.alert_id, now - op.fire_lag)
        elif isinstance(op, ExpireOp):
            now += op.advance
            expired = [sorted(e.expire_due(now)) for e in engines]
            assert expired[0] == expired[1], f"step {step}: {op}"
        elif isinstance(op, AddOp):
            for engine in engines:
                (engine.update if op.update else engine.add)(op.draft.spec(now))
        elif isinstance(op, RemoveOp):
            assert indexed.remove(op.alert_id) == brute.remove(op.alert_id)
        held = [[i for i in IDS if i in e] for e in engines]
        assert held[0] == held[1], f"step {step}: {op}"
        assert len(indexed) == len(brute)


@settings(max_examples=400, deadline=None)
@given(
    initial=st.lists(drafts, min_size=4, max_size=len(IDS), unique_by=lambda d: d.alert_id),
    ops=st.lists(operations, min_size=40, max_size=120),
    max_samples=st.sampled_from([3, 10_000]),
    small_structures=st.booleans(),
    start=st.sampled_from(STARTS),
)
def test_indexed_engine_proposes_what_brute_force_proposes(
    initial: list[Draft],
    ops: list[object],
    max_samples: int,
    small_structures: bool,
    start: datetime,
) -> None:
    with ExitStack() as patches:
        if small_structures:
            # Tiny level chunks and timer merges, so splits, merges and ties across chunk
            # boundaries happen with a handful of alerts.
            patches.enter_context(mock.patch.object(levels_module, "CHUNK", 2))
            patches.enter_context(mock.patch.object(timers_module, "_MIN_MERGE", 2))
        _run(initial, ops, max_samples, start)


@settings(max_examples=40, deadline=None)
@given(
    levels=st.lists(st.sampled_from(PRICE_LEVELS), min_size=50, max_size=300),
    path=st.lists(st.sampled_from(TICK_PRICES[1:]), min_size=2, max_size=40),
    direction=directions,
)
def test_many_alerts_on_one_level_set_oscillating(
    levels: list[float], path: list[float], direction: Direction
) -> None:
    # Hundreds of alerts on few levels (heavy ties), EVERY_TIME with the shortest cooldown, a
    # price oscillating across them a minute apart: every fire is marked, so re-arming from the
    # timer queue while holding is exercised on every other tick.
    kinds = [ConditionKind.PRICE_ABOVE, ConditionKind.PRICE_BELOW, ConditionKind.PRICE_CROSSING]
    initial = [
        Draft(
            f"m{i}",
            "X",
            Condition(kinds[i % 3], level, direction, PriceType.LAST),
            Frequency.EVERY_TIME,
            MINUTE,
            None,
            None,
        )
        for i, level in enumerate(levels)
    ]
    ops: list[object] = [
        _tick_op("X", MINUTE, p, p, 0.0, 0, 100.0, None, None, -1, timedelta(0)) for p in path
    ]
    with mock.patch.object(levels_module, "CHUNK", 4):
        _run(initial, ops, 10_000)
