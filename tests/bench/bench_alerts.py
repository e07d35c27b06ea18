"""Alerts: the condition engine's tick cost with 1,000,000 active alerts on one symbol against
1,000 (goal: at most 3x), the naive scan (the brute-force engine) beside it as the baseline,
and the indexed engine's memory per alert (tracemalloc; goal <= 300 bytes). The tick-to-event
latency through the running service is `tick_to_event_latency` (alert_latency.py).

The alerts are a realistic mix on one equity: price above/below/crossing (a tenth of them on the
mark, bid or ask), percent moves of the last price from the previous close and over 5- and
15-minute windows, day volume; a third EVERY_TIME or ONCE_PER_TRADING_DAY, half with an expiry.
Both sizes use the same 14 channels, so the ratio shows what the number of alerts costs. The
levels lie outside the band the measured ticks move in, except for 10 price crossings (either
way) at 100.20 in both runs. Two tick paths: "quiet" (100.05 <-> 100.15, no level between:
nothing fires) and "firing" (100.10 <-> 100.30: the 10 crossings are proposed on every tick,
never confirmed, so they are proposed again). Both sizes run interleaved in rounds, medians
reported; the naive scan runs beside an indexed engine built the same way, on the same ticks,
and the two are checked to propose the same alerts."""

from __future__ import annotations

import gc
import statistics
import sys
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np

from optix_server.alert.conditions import (
    Condition,
    ConditionKind,
    Direction,
    Frequency,
    MoveBasis,
    PriceType,
    Tick,
)
from optix_server.alert.engine import AlertIndex, AlertSpec, BruteForceEngine, ConditionEngine
from tests.bench import alert_latency

# Stored ACTIVE alerts on the probed symbol in the latency run.
LATENCY_ALERTS = 100_000

SYMBOL = "AAPL"
SIZES = (1_000, 1_000_000)
FIRING = 10
FIRING_LEVEL = 100.2
WINDOWS = (timedelta(minutes=5), timedelta(minutes=15))
TICK_SPACING = timedelta(seconds=2)
WARMUP_TICKS = 480  # 16 minutes of history, past the longest window
ROUNDS = 7
TICKS_PER_ROUND = 400
NAIVE_TICKS = {1_000: 200, 1_000_000: 4}
UPDATES = 2000
GOAL_RATIO, GOAL_BYTES = 3.0, 300.0
START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)

PATHS = {"quiet": (100.05, 100.15), "firing": (100.10, 100.30)}
DIRECTIONS = list(Direction)
PRICE_TYPES = list(PriceType)
LAST = PriceType.LAST


def mix(n: int, seed: int) -> Iterator[AlertSpec]:
    """`n` alerts on SYMBOL: the background mix, then the FIRING crossings at 100.20."""
    rng = np.random.default_rng(seed)
    background = n - FIRING
    roll = rng.random(background)
    far = rng.uniform(101.0, 150.0, background).round(2)
    near = rng.uniform(50.0, 99.5, background).round(2)
    side = rng.random(background) < 0.5
    percent = rng.uniform(1.0, 20.0, background).round(1)
    direction = rng.integers(0, 3, background)
    price_type = rng.integers(0, 4, background)
    frequency = rng.random(background)
    expires = rng.random(background) < 0.5
    expire_days = rng.uniform(1.0, 30.0, background)
    for i in range(background):
        r = float(roll[i])
        pt = PRICE_TYPES[int(price_type[i])] if r < 0.1 else PriceType.LAST
        d = DIRECTIONS[int(direction[i])]
        if r < 0.35:
            condition = Condition(ConditionKind.PRICE_ABOVE, float(far[i]), price_type=pt)
        elif r < 0.65:
            condition = Condition(ConditionKind.PRICE_BELOW, float(near[i]), price_type=pt)
        elif r < 0.85:
            level = float(far[i] if side[i] else near[i])
            condition = Condition(ConditionKind.PRICE_CROSSING, level, d, pt)
        elif r < 0.93:
            condition = Condition(
                ConditionKind.PERCENT_MOVE, float(percent[i]), d, LAST, MoveBasis.PREVIOUS_CLOSE
            )
        elif r < 0.95:
            window = WINDOWS[i % 2]
            condition = Condition(
                ConditionKind.PERCENT_MOVE, float(percent[i]), d, LAST, MoveBasis.WINDOW, window
            )
        else:
            condition = Condition(ConditionKind.DAY_VOLUME_ABOVE, float(round(far[i] * 1e5)))
        f = float(frequency[i])
        yield AlertSpec(
            _alert_id(seed, i),
            SYMBOL,
            condition,
            Frequency.ONCE
            if f < 0.65
            else Frequency.EVERY_TIME
            if f < 0.9
            else (Frequency.ONCE_PER_TRADING_DAY),
            expire_time=START + timedelta(days=float(expire_days[i])) if expires[i] else None,
        )
    crossing = Condition(
        ConditionKind.PRICE_CROSSING, FIRING_LEVEL, Direction.EITHER, PriceType.LAST
    )
    for i in range(background, n):
        yield AlertSpec(_alert_id(seed, i), SYMBOL, crossing, Frequency.EVERY_TIME)


def _alert_id(seed: int, i: int) -> str:
    """A 32-character hex id like the database's, the same for the same (seed, i)."""
    return uuid.UUID(int=seed << 64 | i).hex


def watchers() -> list[AlertSpec]:
    """One window alert per window, so a brute-force engine can be warmed up before the mix."""
    return [
        AlertSpec(
            f"watch-{w}",
            SYMBOL,
            Condition(
                ConditionKind.PERCENT_MOVE, 50.0, Direction.UP, PriceType.LAST, MoveBasis.WINDOW, w
            ),
        )
        for w in WINDOWS
    ]


class Feed:
    """Ticks SYMBOL through one engine along the two paths, TICK_SPACING apart."""

    def __init__(self, engine: ConditionEngine) -> None:
        self.engine = engine
        self.count = 0

    def next_tick(self, path: str) -> Tick:
        """The next tick of `path` (alternating between its two prices)."""
        self.count += 1
        price = PATHS[path][self.count % 2]
        return Tick(
            SYMBOL,
            START + self.count * TICK_SPACING,
            price,
            price,
            price - 0.01,
            price + 0.01,
            1_000_000,
            100.0,
        )

    def run(self, path: str, ticks: int) -> tuple[float, int]:
        """Seconds per tick over `ticks` ticks, and the candidates of the last one."""
        batch = [self.next_tick(path) for _ in range(ticks)]
        evaluate = self.engine.evaluate
        found = 0
        started = time.perf_counter()
        for tick in batch:
            found = len(evaluate(tick))
        return (time.perf_counter() - started) / ticks, found


def build_index(specs: list[AlertSpec]) -> tuple[AlertIndex, float]:
    """An index of `specs` (the rebuild at start) and its build seconds."""
    index = AlertIndex()
    started = time.perf_counter()
    index.replace_all(specs)
    return index, time.perf_counter() - started


def traced_bytes_per_alert(specs: list[AlertSpec]) -> float:
    """Bytes per alert an index of `specs` keeps: what tracemalloc sees allocated by the
    rebuild and still live after it, plus the alert ids (created before tracing started; the
    index holds them). Tracing makes the build several times slower, so it is a separate run."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        index, _ = build_index(specs)
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    ids = sum(sys.getsizeof(spec.alert_id) for spec in specs)
    del index
    return (kept + ids) / len(specs)


def update_cost(index: AlertIndex) -> float:
    """Microseconds per add + remove of one price alert."""
    condition = Condition(ConditionKind.PRICE_ABOVE, 123.45, price_type=PriceType.LAST)
    specs = [AlertSpec(f"u{i}", SYMBOL, condition) for i in range(UPDATES)]
    started = time.perf_counter()
    for spec in specs:
        index.add(spec)
    for spec in specs:
        index.remove(spec.alert_id)
    return (time.perf_counter() - started) / UPDATES * 1e6


def naive_scan(specs: list[AlertSpec]) -> tuple[float, float, bool]:
    """Seconds per tick of the brute-force engine over `specs` and of an indexed engine built
    the same way, on the same ticks (alternating paths), and whether they proposed the same."""
    brute, index = BruteForceEngine(), AlertIndex()
    pairs: list[tuple[ConditionEngine, Feed]] = [(brute, Feed(brute)), (index, Feed(index))]
    for engine, feed in pairs:
        # The windows get their history before the mix arrives: a brute-force warm-up with a
        # million alerts would take minutes.
        engine.replace_all(watchers())
        for _ in range(WARMUP_TICKS):
            engine.evaluate(feed.next_tick("quiet"))
        for spec in specs:
            engine.add(spec)
        for spec in watchers():
            engine.remove(spec.alert_id)
    spent = [0.0, 0.0]
    agree = True
    ticks = NAIVE_TICKS[len(specs)]
    for count in range(ticks):
        path = "firing" if count % 2 == 0 else "quiet"
        proposed = []
        for which, (engine, feed) in enumerate(pairs):
            tick = feed.next_tick(path)
            started = time.perf_counter()
            candidates = engine.evaluate(tick)
            spent[which] += time.perf_counter() - started
            proposed.append({c.alert_id for c in candidates})
        agree = agree and proposed[0] == proposed[1]
    return spent[0] / ticks, spent[1] / ticks, agree


def tick_to_event_latency() -> None:
    """Tick-to-event p99 through the running service with 100,000 active alerts on the probed
    symbol, as a ratio to the quote stream's own tick-to-client p99 in the same run (goal <=
    2x): see alert_latency.py."""
    alert_latency.report(LATENCY_ALERTS)


def main() -> None:
    """Build both sizes, time the paths interleaved, compare with the naive scan, print."""
    specs = {n: list(mix(n, seed=n)) for n in SIZES}
    small, large = SIZES
    per_alert = traced_bytes_per_alert(specs[large])
    print(
        f"memory per indexed alert ({large:,} alerts, tracemalloc): {per_alert:.0f} bytes "
        f"(goal <= {GOAL_BYTES:.0f}: {per_alert <= GOAL_BYTES})"
    )
    indexes: dict[int, AlertIndex] = {}
    feeds: dict[int, Feed] = {}
    for n in SIZES:
        index, elapsed = build_index(specs[n])
        print(f"indexed engine, {n:>9,} alerts: rebuilt in {elapsed:.2f} s")
        indexes[n], feeds[n] = index, Feed(index)
        for _ in range(WARMUP_TICKS):
            index.evaluate(feeds[n].next_tick("quiet"))
    per_tick: dict[tuple[int, str], list[float]] = {(n, p): [] for n in SIZES for p in PATHS}
    found: dict[tuple[int, str], int] = {}
    for _ in range(ROUNDS):
        for n in SIZES:
            for path in PATHS:
                seconds, found[(n, path)] = feeds[n].run(path, TICKS_PER_ROUND)
                per_tick[(n, path)].append(seconds)
    for path in PATHS:
        cost = {n: statistics.median(per_tick[(n, path)]) * 1e6 for n in SIZES}
        ratio = cost[large] / cost[small]
        print(
            f"{path} tick ({found[(large, path)]} candidates): {cost[small]:.1f} us with "
            f"{small:,} alerts, {cost[large]:.1f} us with {large:,}: ratio {ratio:.2f}x "
            f"(goal <= {GOAL_RATIO:.0f}x: {ratio <= GOAL_RATIO})"
        )
    for n in SIZES:
        print(f"add + remove of one alert among {n:,}: {update_cost(indexes[n]):.1f} us")
    del indexes, feeds, index
    gc.collect()
    naive: dict[int, float] = {}
    for n in SIZES:
        naive[n], indexed, agree = naive_scan(specs[n])
        print(
            f"naive scan (brute-force engine), {n:>9,} alerts: {naive[n] * 1e3:.2f} ms a tick, "
            f"{naive[n] / indexed:,.0f}x the indexed engine's {indexed * 1e6:.1f} us on the same "
            f"ticks, caches cold after each scan (same candidates: {agree})"
        )
    print(f"naive scan, {large:,} vs {small:,} alerts: {naive[large] / naive[small]:,.0f}x")
    tick_to_event_latency()


if __name__ == "__main__":
    main()
