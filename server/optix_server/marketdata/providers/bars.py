"""Minute bars recorded from ticks, aggregated to any bar interval on demand."""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

from optix_server.marketdata.models import BarInterval, PriceBar

# 1970-01-05 was a Monday: weekly bars start on Mondays, 00:00 UTC.
_WEEK_ANCHOR = 4 * 86400


def bar_start(epoch_seconds: float, interval: BarInterval) -> int:
    """The start (epoch seconds) of the bar of `interval` containing `epoch_seconds`."""
    length = interval.value
    anchor = _WEEK_ANCHOR if interval is BarInterval.ONE_WEEK else 0
    return int((epoch_seconds - anchor) // length) * length + anchor


class MinuteBars:
    """A bounded, ordered record of one symbol's minute bars."""

    def __init__(self, max_minutes: int = 7 * 1440) -> None:
        self._max = max_minutes
        # minute start -> [open, high, low, close, volume]
        self._bars: OrderedDict[int, list[float]] = OrderedDict()

    def record(
        self, times: NDArray[np.float64], prices: NDArray[np.float64], volumes: NDArray[np.int64]
    ) -> None:
        """Add ticks (epoch seconds, trade prices, traded volumes), in time order."""
        if times.size == 0:
            return
        minutes = (times // 60).astype(np.int64) * 60
        starts = np.concatenate(([0], np.flatnonzero(np.diff(minutes)) + 1))
        # One vectorised pass per chunk: a day of 10 ticks/s is ~1M ticks on catch-up.
        opens = prices[starts]
        closes = prices[np.concatenate((starts[1:] - 1, [times.size - 1]))]
        highs = np.maximum.reduceat(prices, starts)
        lows = np.minimum.reduceat(prices, starts)
        volumes_per = np.add.reduceat(volumes, starts)
        rows = zip(
            minutes[starts].tolist(),
            opens.tolist(),
            highs.tolist(),
            lows.tolist(),
            closes.tolist(),
            volumes_per.tolist(),
            strict=True,
        )
        for key, o, h, low, c, v in rows:
            bar = self._bars.get(key)
            if bar is None:
                self._bars[key] = [o, h, low, c, float(v)]
            else:
                bar[1] = max(bar[1], h)
                bar[2] = min(bar[2], low)
                bar[3] = c
                bar[4] += v
        while len(self._bars) > self._max:
            self._bars.popitem(last=False)

    def bars(self, interval: BarInterval, start: float, end: float) -> list[PriceBar]:
        """Bars of `interval` whose start lies in [start, end), built from the minutes held."""
        grouped: OrderedDict[int, list[float]] = OrderedDict()
        for minute, (o, h, low, c, v) in self._bars.items():
            key = bar_start(minute, interval)
            if key < start or key >= end:
                continue
            bar = grouped.get(key)
            if bar is None:
                grouped[key] = [o, h, low, c, v]
            else:
                bar[1] = max(bar[1], h)
                bar[2] = min(bar[2], low)
                bar[3] = c
                bar[4] += v
        return [
            PriceBar(datetime.fromtimestamp(k, UTC), o, h, low, c, int(v))
            for k, (o, h, low, c, v) in grouped.items()
        ]
