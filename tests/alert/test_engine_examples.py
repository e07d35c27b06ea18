"""Readable examples of each condition semantics (the proto comments of AlertCondition), run
against both engines: the indexed AlertIndex and the brute-force reference."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

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
from optix_server.alert.engine import AlertIndex, AlertSpec, BruteForceEngine, ConditionEngine

# 10:00 in New York (EST) on a Monday.
T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
SYMBOL = "AAPL"
LAST = PriceType.LAST


@pytest.fixture(params=[AlertIndex, BruteForceEngine], ids=["indexed", "brute"])
def engine(request: pytest.FixtureRequest) -> ConditionEngine:
    """A fresh engine of each implementation."""
    factory: Callable[[], ConditionEngine] = request.param
    return factory()


class Feed:
    """Ticks one symbol through an engine, a minute apart unless told otherwise."""

    def __init__(self, engine: ConditionEngine) -> None:
        self.engine = engine
        self.time = T0

    def tick(
        self,
        last: float,
        *,
        after: timedelta = timedelta(minutes=1),
        previous_close: float = 100.0,
        volume: int = 0,
        iv: float | None = None,
        delta: float | None = None,
    ) -> dict[str, tuple[float, float | None]]:
        """The candidates of one tick: alert id -> (observed, reference)."""
        self.time += after
        tick = Tick(SYMBOL, self.time, last, last, last, last, volume, previous_close, iv, delta)
        return {c.alert_id: (c.observed, c.reference) for c in self.engine.evaluate(tick)}

    def fires(self, last: float, *, after: timedelta = timedelta(minutes=1)) -> set[str]:
        """The ids proposed on one tick, each then marked fired at the tick's time."""
        found = set(self.tick(last, after=after))
        for alert_id in found:
            self.engine.mark_fired(alert_id, self.time)
        return found


def spec(
    alert_id: str,
    condition: Condition,
    frequency: Frequency = Frequency.ONCE,
    *,
    cooldown: timedelta = DEFAULT_COOLDOWN,
    expire_time: datetime | None = None,
    last_fire_time: datetime | None = None,
) -> AlertSpec:
    """An alert on SYMBOL."""
    return AlertSpec(alert_id, SYMBOL, condition, frequency, cooldown, expire_time, last_fire_time)


def above(level: float) -> Condition:
    """Last price strictly above `level`."""
    return Condition(ConditionKind.PRICE_ABOVE, level, price_type=LAST)


def below(level: float) -> Condition:
    """Last price strictly below `level`."""
    return Condition(ConditionKind.PRICE_BELOW, level, price_type=LAST)


def crossing(level: float, direction: Direction) -> Condition:
    """Last price crossing `level` in `direction`."""
    return Condition(ConditionKind.PRICE_CROSSING, level, direction, price_type=LAST)


def move(percent: float, direction: Direction, window: timedelta | None = None) -> Condition:
    """Last price moving `percent` from the previous close, or over `window`."""
    basis = MoveBasis.PREVIOUS_CLOSE if window is None else MoveBasis.WINDOW
    return Condition(ConditionKind.PERCENT_MOVE, percent, direction, LAST, basis, window)


def test_price_above_is_strict_and_a_once_alert_fires_once(engine: ConditionEngine) -> None:
    feed = Feed(engine)
    engine.add(spec("a", above(100)))
    assert feed.fires(100) == set()
    assert feed.tick(100.5) == {"a": (100.5, None)}
    engine.mark_fired("a", feed.time)
    assert "a" not in engine
    assert feed.fires(101) == set()


def test_a_threshold_fires_on_the_first_tick_after_add_when_it_already_holds(
    engine: ConditionEngine,
) -> None:
    feed = Feed(engine)
    feed.tick(105)
    engine.add(spec("a", above(100)))
    engine.add(spec("b", below(110)))
    assert feed.fires(105) == {"a", "b"}


def test_an_unconfirmed_candidate_is_proposed_again_while_it_holds(
    engine: ConditionEngine,
) -> None:
    feed = Feed(engine)
    engine.add(spec("a", below(100)))
    assert set(feed.tick(99)) == {"a"}
    # The database did not confirm (another replica won): still held, still holding.
    assert set(feed.tick(98)) == {"a"}
    assert set(feed.tick(100)) == set()
    assert set(feed.tick(99.99)) == {"a"}


def test_every_time_refires_after_each_cooldown_while_it_holds(engine: ConditionEngine) -> None:
    feed = Feed(engine)
    engine.add(spec("a", above(100), Frequency.EVERY_TIME, cooldown=timedelta(minutes=5)))
    assert feed.fires(101) == {"a"}  # 15:01
    assert feed.fires(102, after=timedelta(minutes=4)) == set()  # 15:05, 4 min later
    assert feed.fires(103, after=timedelta(minutes=1)) == {"a"}  # 15:06, exactly 5 min
    assert feed.fires(99, after=timedelta(minutes=10)) == set()  # no longer holds
    assert feed.fires(101) == {"a"}
    assert "a" in engine


def test_once_per_trading_day_follows_the_new_york_date(engine: ConditionEngine) -> None:
    feed = Feed(engine)
    engine.add(spec("a", above(100), Frequency.ONCE_PER_TRADING_DAY))
    assert feed.fires(101) == {"a"}  # Monday 10:01 New York
    assert feed.fires(102, after=timedelta(hours=13)) == set()  # 23:01 New York
    # 04:59 UTC is still Monday in New York (EST, UTC-5); 05:00 UTC is Tuesday.
    feed.time = datetime(2026, 3, 3, 4, 58, tzinfo=UTC)
    assert feed.fires(103) == set()
    assert feed.fires(103) == {"a"}


def test_a_weekend_is_not_a_new_trading_day(engine: ConditionEngine) -> None:
    feed = Feed(engine)
    engine.add(spec("a", above(100), Frequency.ONCE_PER_TRADING_DAY))
    feed.time = datetime(2026, 2, 27, 15, 0, tzinfo=UTC)  # Friday 10:00 New York
    assert feed.fires(101) == {"a"}
    assert feed.fires(101, after=timedelta(hours=15)) == set()  # Saturday 01:01
    assert feed.fires(101, after=timedelta(hours=24)) == set()  # Sunday 01:01
    # Sunday 23:59 New York (EST) is still Friday's trading day; Monday's starts at midnight.
    feed.time = datetime(2026, 3, 2, 4, 58, tzinfo=UTC)
    assert feed.fires(101) == set()
    assert feed.fires(101) == {"a"}


def test_an_exchange_holiday_is_not_a_new_trading_day(engine: ConditionEngine) -> None:
    feed = Feed(engine)
    # Christmas 2026 is a Friday: an alert fired on Christmas Eve waits for Monday the 28th.
    engine.add(spec("eve", above(100), Frequency.ONCE_PER_TRADING_DAY))
    feed.time = datetime(2026, 12, 24, 15, 0, tzinfo=UTC)
    assert feed.fires(101) == {"eve"}
    assert feed.fires(101, after=timedelta(days=1)) == set()  # Christmas 10:01
    feed.time = datetime(2026, 12, 28, 4, 58, tzinfo=UTC)
    assert feed.fires(101) == set()  # Sunday 23:59
    assert feed.fires(101) == {"eve"}  # Monday 00:00
    engine.remove("eve")
    # Stored as fired on Thursday 2027-03-25 (EDT by then); Good Friday has no session.
    fired = datetime(2027, 3, 25, 19, 0, tzinfo=UTC)
    engine.add(spec("good", above(100), Frequency.ONCE_PER_TRADING_DAY, last_fire_time=fired))
    feed.time = datetime(2027, 3, 26, 14, 0, tzinfo=UTC)  # Good Friday 10:01
    assert feed.fires(101) == set()
    feed.time = datetime(2027, 3, 29, 3, 58, tzinfo=UTC)
    assert feed.fires(101) == set()  # Sunday 23:59
    assert feed.fires(101) == {"good"}  # Monday 00:00


def test_a_crossing_needs_a_transition_and_its_first_tick_only_records_the_side(
    engine: ConditionEngine,
) -> None:
    feed = Feed(engine)
    engine.add(spec("up", crossing(100, Direction.UP), Frequency.EVERY_TIME))
    engine.add(spec("down", crossing(100, Direction.DOWN), Frequency.EVERY_TIME))
    engine.add(spec("either", crossing(100, Direction.EITHER), Frequency.EVERY_TIME))
    long = timedelta(minutes=10)  # past every cooldown
    assert feed.tick(101) == {}  # only records "above"
    assert feed.tick(99, after=long) == {"down": (99, 101), "either": (99, 101)}
    # From strictly below to exactly the level is a crossing up ...
    assert feed.tick(100, after=long) == {"up": (100, 99), "either": (100, 99)}
    # ... and from the level upwards is not; nor is staying above.
    assert feed.tick(101, after=long) == {}
    assert feed.tick(102, after=long) == {}
    assert set(feed.tick(100, after=long)) == {"down", "either"}


def test_a_crossing_added_later_ignores_the_move_before_its_first_tick(
    engine: ConditionEngine,
) -> None:
    feed = Feed(engine)
    feed.tick(99)
    engine.add(spec("up", crossing(100, Direction.UP)))
    assert feed.tick(101) == {}  # 99 -> 101 happened across the add: only records the side
    assert feed.tick(99) == {}
    assert set(feed.tick(101)) == {"up"}


def test_a_crossing_during_a_cooldown_is_lost_but_moves_the_side(
    engine: ConditionEngine,
) -> None:
    feed = Feed(engine)
    engine.add(spec("up", crossing(100, Direction.UP), Frequency.EVERY_TIME))
    feed.tick(99)
    assert feed.fires(101) == {"up"}
    assert feed.fires(99) == set()
    assert feed.fires(101) == set()  # in the cooldown
    assert feed.fires(102, after=timedelta(minutes=10)) == set()  # no transition since
    assert feed.fires(99) == set()
    assert feed.fires(101) == {"up"}


def test_delta_crossings_keep_their_side_across_ticks_without_a_delta(
    engine: ConditionEngine,
) -> None:
    feed = Feed(engine)
    engine.add(spec("d", Condition(ConditionKind.DELTA_CROSSING, 0.5, Direction.UP)))
    feed.tick(5, delta=0.45)
    assert feed.tick(5, delta=None) == {}
    assert feed.tick(5, delta=0.55) == {"d": (0.55, 0.45)}


def test_implied_volatility_thresholds_skip_ticks_without_one(engine: ConditionEngine) -> None:
    feed = Feed(engine)
    engine.add(spec("hi", Condition(ConditionKind.IMPLIED_VOLATILITY_ABOVE, 0.5)))
    engine.add(spec("lo", Condition(ConditionKind.IMPLIED_VOLATILITY_BELOW, 0.2)))
    assert feed.tick(5, iv=None) == {}
    assert feed.tick(5, iv=0.5) == {}
    assert feed.tick(5, iv=0.51) == {"hi": (0.51, None)}
    assert feed.tick(5, iv=0.19) == {"lo": (0.19, None)}


def test_day_volume_above_is_strict(engine: ConditionEngine) -> None:
    feed = Feed(engine)
    engine.add(spec("v", Condition(ConditionKind.DAY_VOLUME_ABOVE, 1_000_000)))
    assert feed.tick(100, volume=1_000_000) == {}
    assert feed.tick(100, volume=1_000_001) == {"v": (1_000_001.0, None)}


def test_percent_move_from_the_previous_close(engine: ConditionEngine) -> None:
    feed = Feed(engine)
    engine.add(spec("up", move(5, Direction.UP), Frequency.EVERY_TIME))
    engine.add(spec("down", move(5, Direction.DOWN), Frequency.EVERY_TIME))
    engine.add(spec("either", move(10, Direction.EITHER), Frequency.EVERY_TIME))
    assert feed.tick(104.99) == {}
    assert feed.tick(105) == {"up": (5.0, 100.0)}  # at least 5%
    assert feed.tick(95) == {"down": (-5.0, 100.0)}
    assert feed.tick(90) == {"down": (-10.0, 100.0), "either": (-10.0, 100.0)}
    # A new session's close moves the levels with it.
    assert feed.tick(90, previous_close=90) == {}
    assert feed.tick(90, previous_close=0) == {}  # no previous close: skipped


def test_percent_move_over_a_window_needs_history_reaching_back(
    engine: ConditionEngine,
) -> None:
    feed = Feed(engine)
    window = timedelta(minutes=5)
    engine.add(spec("w", move(2, Direction.UP, window), Frequency.EVERY_TIME))
    assert feed.tick(100) == {}  # 15:01
    assert feed.tick(103, after=timedelta(minutes=4)) == {}  # nothing 5 minutes back yet
    # 15:06: the price 5 minutes back (15:01) was 100.
    assert feed.tick(102, after=timedelta(minutes=1)) == {"w": (2.0, 100.0)}
    # 15:07: the latest price at or before 15:02 is still the 15:01 one.
    assert feed.tick(101.9, after=timedelta(minutes=1)) == {}
    # 15:10: the price at 15:05 was 103, and 105 is 1.94% above it.
    assert feed.tick(105, after=timedelta(minutes=3)) == {}
    observed, reference = feed.tick(106, after=timedelta(seconds=1))["w"]
    assert observed == pytest.approx(300 / 103)
    assert reference == 103.0


def test_expiry_happens_on_time_without_quotes_and_stops_firing(
    engine: ConditionEngine,
) -> None:
    feed = Feed(engine)
    engine.add(spec("a", above(200), expire_time=T0 + timedelta(minutes=30)))
    engine.add(spec("b", above(100), expire_time=T0 + timedelta(minutes=2)))
    assert engine.expire_due(T0 + timedelta(minutes=1)) == []
    assert set(engine.expire_due(T0 + timedelta(minutes=30))) == {"a", "b"}
    assert engine.expire_due(T0 + timedelta(minutes=31)) == []
    assert len(engine) == 0
    assert feed.tick(300) == {}


def test_an_alert_does_not_fire_at_its_expire_time(engine: ConditionEngine) -> None:
    feed = Feed(engine)
    engine.add(spec("a", above(100), expire_time=T0 + timedelta(minutes=1)))
    assert feed.tick(101) == {}  # the tick is at 15:01, the expire time
    assert engine.expire_due(feed.time) == ["a"]


def test_update_keeps_the_crossing_side_unless_the_condition_changes(
    engine: ConditionEngine,
) -> None:
    feed = Feed(engine)
    engine.add(spec("up", crossing(100, Direction.UP), Frequency.EVERY_TIME))
    feed.tick(99)
    engine.update(spec("up", crossing(100, Direction.UP), Frequency.ONCE))
    assert set(feed.tick(101)) == {"up"}
    feed.tick(99)
    engine.update(spec("up", crossing(100.5, Direction.UP)))
    assert feed.tick(101) == {}  # a new condition: its first tick records the side


def test_a_rebuild_honours_the_stored_last_fire_time(engine: ConditionEngine) -> None:
    feed = Feed(engine)
    fired = T0 - timedelta(minutes=2)
    cooldown = timedelta(minutes=5)
    engine.replace_all(
        [
            spec("cool", above(100), Frequency.EVERY_TIME, cooldown=cooldown, last_fire_time=fired),
            spec("day", above(100), Frequency.ONCE_PER_TRADING_DAY, last_fire_time=fired),
            spec("fresh", above(100), Frequency.EVERY_TIME, cooldown=cooldown),
        ]
    )
    assert feed.fires(101) == {"fresh"}  # 15:01
    assert feed.fires(101, after=timedelta(minutes=2)) == {"cool"}  # 15:03 = fired + 5 min
    assert engine.remove("day")
    assert not engine.remove("day")


def test_add_of_a_held_alert_replaces_it_with_a_fresh_side(engine: ConditionEngine) -> None:
    feed = Feed(engine)
    engine.add(spec("up", crossing(100, Direction.UP)))
    feed.tick(99)
    engine.add(spec("up", crossing(100, Direction.UP)))  # re-enabled: the side is new
    assert feed.tick(101) == {}
    assert len(engine) == 1


def test_update_of_an_alert_not_held_adds_it_and_unknown_ids_are_ignored(
    engine: ConditionEngine,
) -> None:
    feed = Feed(engine)
    engine.update(spec("a", above(100)))
    engine.mark_fired("nobody", T0)
    assert not engine.remove("nobody")
    assert set(feed.tick(101)) == {"a"}


def test_a_rebuild_refuses_a_duplicate_id(engine: ConditionEngine) -> None:
    with pytest.raises(ValueError, match="listed twice"):
        engine.replace_all([spec("a", above(100)), spec("a", below(100))])
