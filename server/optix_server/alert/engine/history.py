"""Rolling price windows for PERCENT_MOVE_BASIS_WINDOW: per watched symbol and price type, the
(time, price) samples of its quotes, kept as far back as the longest window in use and at most
`max_samples` of them.

A window's reference is the latest sample at or before `window` before the quote; when the kept
samples do not reach back that far (the symbol was just watched, a longer window was just added,
or the sample cap cut it), there is no reference and the condition does not hold yet. Both
engines keep their windows with this class, so they agree on what history exists; the brute-force
engine reads the samples with a linear scan instead of bisecting."""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections import Counter

from optix_server.alert.conditions import PriceType, Tick
from optix_server.alert.engine.timing import to_micros

# Default bound on one series: a day of one-second quotes, 1.6 MB of samples at most.
DEFAULT_MAX_SAMPLES = 86_400
# Dropped samples are compacted away once this many (and half the array) are dead.
_COMPACT_AFTER = 1024


class PriceSeries:
    """The kept (time, price) samples of one symbol and price type, oldest first."""

    __slots__ = ("_longest", "_max_samples", "_prices", "_start", "_times", "_windows")

    def __init__(self, max_samples: int) -> None:
        self._times: array[int] = array("q")
        self._prices: array[float] = array("d")
        self._start = 0
        self._max_samples = max_samples
        self._windows: Counter[int] = Counter()
        self._longest = 0

    def watch(self, window: int) -> None:
        """Count one more alert using `window` (microseconds)."""
        self._windows[window] += 1
        self._longest = max(self._longest, window)

    def unwatch(self, window: int) -> bool:
        """Count one alert fewer using `window`; True when no alert uses the series any more."""
        self._windows[window] -= 1
        if self._windows[window] <= 0:
            del self._windows[window]
            # The next append prunes to the new longest window.
            self._longest = max(self._windows, default=0)
        return not self._windows

    def append(self, time: int, price: float) -> None:
        """Record a quote's price; a quote older than the last sample is ignored (it would
        unsort the window)."""
        times = self._times
        if len(times) > self._start and time < times[-1]:
            return
        times.append(time)
        self._prices.append(price)
        # Keep the latest sample at or before the longest window (a future reference) onwards.
        keep = bisect_right(times, time - self._longest, self._start) - 1
        start = max(self._start, keep, len(times) - self._max_samples)
        if start > _COMPACT_AFTER and start > len(times) // 2:
            del times[:start]
            del self._prices[:start]
            start = 0
        self._start = start

    def reference(self, time: int, window: int) -> float | None:
        """The price of the latest sample at or before `time - window`; None if none is kept."""
        at = bisect_right(self._times, time - window, self._start) - 1
        return self._prices[at] if at >= self._start else None

    def samples(self) -> list[tuple[int, float]]:
        """The kept samples, oldest first."""
        start = self._start
        return list(zip(self._times[start:], self._prices[start:], strict=True))


class WindowHistories:
    """The price series of every (symbol, price type) that some window alert watches."""

    __slots__ = ("_max_samples", "_series")

    def __init__(self, max_samples: int = DEFAULT_MAX_SAMPLES) -> None:
        self._max_samples = max_samples
        self._series: dict[str, dict[PriceType, PriceSeries]] = {}

    def watch(self, symbol: str, price_type: PriceType, window: int) -> None:
        """Start (or keep) sampling `symbol`'s `price_type` for a window alert."""
        by_type = self._series.setdefault(symbol, {})
        series = by_type.get(price_type)
        if series is None:
            series = by_type[price_type] = PriceSeries(self._max_samples)
        series.watch(window)

    def unwatch(self, symbol: str, price_type: PriceType, window: int) -> None:
        """Release one window alert's use; the series is dropped with its last user."""
        by_type = self._series[symbol]
        if by_type[price_type].unwatch(window):
            del by_type[price_type]
            if not by_type:
                del self._series[symbol]

    def record(self, tick: Tick) -> None:
        """Append `tick`'s prices to its symbol's watched series (prices <= 0 are no sample)."""
        by_type = self._series.get(tick.symbol)
        if not by_type:
            return
        time = to_micros(tick.time)
        for price_type, series in by_type.items():
            price = tick.price(price_type)
            if price > 0:
                series.append(time, price)

    def series(self, symbol: str, price_type: PriceType) -> PriceSeries | None:
        """The series of `symbol`'s `price_type`, if watched."""
        by_type = self._series.get(symbol)
        return None if by_type is None else by_type.get(price_type)

    def __len__(self) -> int:
        return sum(len(by_type) for by_type in self._series.values())
