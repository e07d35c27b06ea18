"""Seeded geometric Brownian motion per symbol: reproducible ticks, day stats and bars.

A symbol's path depends only on (seed, symbol, tick index): tick k happens at
`start + k / tick_rate` and however the path is advanced (one tick or a day at once) it yields
the same numbers, so quotes, streams and price history agree with each other.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np

from optix_server.common.price_increments import EQUITY_TICKS
from optix_server.marketdata.models import BarInterval, DataSource, PriceBar, Quote
from optix_server.marketdata.providers.bars import MinuteBars, bar_start
from optix_server.marketdata.providers.universe import SimulatedInstrument, stable_seed

SECONDS_PER_YEAR = 365.0 * 86400.0
# Bound on generated pre-simulation bars per request (e.g. ~80 years of daily bars).
MAX_HISTORY_BARS = 20_000


class SymbolPath:
    """The state of one symbol's simulated path, advanced lazily to a tick index."""

    def __init__(
        self, spec: SimulatedInstrument, seed: int, tick_rate: float, start: float
    ) -> None:
        self.spec = spec
        self._rng = np.random.Generator(np.random.PCG64(stable_seed(seed, spec.symbol, "ticks")))
        self._rate = tick_rate
        self._start = start
        dt = 1.0 / (tick_rate * SECONDS_PER_YEAR)
        self._drift = (spec.drift - 0.5 * spec.volatility**2) * dt
        self._diffusion = spec.volatility * math.sqrt(dt)
        self.tick = 0
        self.log_price = math.log(spec.initial_price)
        self.price = spec.initial_price
        self.open = spec.initial_price
        self.high = spec.initial_price
        self.low = spec.initial_price
        self.volume = 0
        self.noise = 0.0
        self.bars = MinuteBars()

    def tick_time(self, tick: int) -> float:
        """Epoch seconds of tick `tick`."""
        return self._start + tick / self._rate

    def advance_to(self, tick: int) -> bool:
        """Generate every tick up to `tick`; whether anything changed."""
        n = tick - self.tick
        if n <= 0:
            return False
        z = self._rng.standard_normal((n, 2))
        log_path = self.log_price + np.cumsum(self._drift + self._diffusion * z[:, 0])
        prices = np.exp(log_path)
        volumes = (100 * np.floor(np.abs(z[:, 1]) * 2)).astype(np.int64)
        times = self._start + np.arange(self.tick + 1, tick + 1, dtype=np.float64) / self._rate
        self.bars.record(times, EQUITY_TICKS.nearest_array(prices), volumes)
        self.tick = tick
        self.log_price = float(log_path[-1])
        self.price = float(prices[-1])
        self.high = max(self.high, float(prices.max()))
        self.low = min(self.low, float(prices.min()))
        self.volume += int(volumes.sum())
        self.noise = float(z[-1, 1])
        return True

    def quote(self, source: DataSource) -> Quote:
        """The quote at the current tick, every price on the instrument's tick."""
        ticks = EQUITY_TICKS
        spread = max(0.01, ticks.nearest(self.price * 0.0002))
        bid = ticks.floor(self.price - spread / 2)
        size = int(100 * (1 + abs(self.noise) * 5))
        return Quote(
            symbol=self.spec.symbol,
            instrument_type=self.spec.instrument_type,
            bid=bid,
            ask=ticks.nearest(bid + spread),
            # The same rounding as the bars', so the newest bar closes at `last`.
            last=ticks.nearest(self.price),
            bid_size=size,
            ask_size=size + 100,
            volume=self.volume,
            open=ticks.nearest(self.open),
            high=ticks.nearest(self.high),
            low=ticks.nearest(self.low),
            previous_close=ticks.nearest(self.spec.initial_price),
            quote_time=datetime.fromtimestamp(self.tick_time(self.tick), UTC),
            source=source,
            sequence=self.tick + 1,
        )

    def history_before_start(
        self, seed: int, interval: BarInterval, start: float, end: float
    ) -> list[PriceBar]:
        """Deterministic bars starting in [start, end) before the bar the simulation started in,
        walking backwards from the initial price (a longer request extends the same path)."""
        length = interval.value
        first_live = bar_start(self._start, interval)
        j_max = min(MAX_HISTORY_BARS, int((first_live - start) // length))
        j_min = max(1, math.floor((first_live - end) / length) + 1)
        if j_max < j_min:
            return []
        rng = np.random.Generator(
            np.random.PCG64(stable_seed(seed, self.spec.symbol, "history", length))
        )
        z = rng.standard_normal((j_max, 3))
        step = self.spec.volatility * math.sqrt(length / SECONDS_PER_YEAR)
        # closes[j] is the price at the start of bar j (bar j = j bars before the live one).
        closes = self.spec.initial_price * np.exp(
            np.concatenate(([0.0], -np.cumsum(step * z[:, 0])))
        )
        bars: list[PriceBar] = []
        on_tick = EQUITY_TICKS.nearest
        for j in range(j_max, j_min - 1, -1):
            open_, close = float(closes[j]), float(closes[j - 1])
            bars.append(
                PriceBar(
                    datetime.fromtimestamp(first_live - j * length, UTC),
                    on_tick(open_),
                    on_tick(max(open_, close) * math.exp(abs(z[j - 1, 1]) * step * 0.5)),
                    on_tick(min(open_, close) * math.exp(-abs(z[j - 1, 2]) * step * 0.5)),
                    on_tick(close),
                    int(1000 * length / 60 * (1 + abs(z[j - 1, 1]))),
                )
            )
        return bars
