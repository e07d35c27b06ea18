"""Minimum price increments (ticks) of US equities and equity options, and rounding onto them.

The rules a provider quotes by:

- equities (and index values): $0.01;
- options in SPY, QQQ and IWM: $0.01 at every price (the all-penny classes);
- options in the Penny Interval Program classes below: $0.01 under $3.00, $0.05 from $3.00;
- every other option class: $0.05 under $3.00, $0.10 from $3.00.

A price on the tick is `k / ticks_per_dollar` for an integer k, the double nearest the decimal
price, so it prints as `189.37` (not `189.37000000000001`). Differences and midpoints of such
prices are rounded to PRICE_DECIMALS, which is exact for every cent-based tick: a difference
has two decimals and half a cent three.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

# Where the option tick steps up (exchange rules: "$3.00 and above").
OPTION_TICK_BREAK = 3.0
ALL_PENNY_CLASSES = frozenset({"IWM", "QQQ", "SPY"})
# The Penny Interval Program classes this backend quotes in pennies (the simulated universe's
# names and a few of the most active others).
PENNY_PROGRAM_CLASSES = frozenset(
    {"AAPL", "AMD", "AMZN", "BAC", "GOOGL", "INTC", "META", "MSFT", "NFLX", "NVDA", "TSLA"}
)
# Decimals of derived prices (change, mark) and of change_percent.
PRICE_DECIMALS = 4
PERCENT_DECIMALS = 4
# Slack for a price that lands on a tick up to float error (x * 20 = 2.9999999999999996).
_EPSILON = 1e-7


@dataclass(frozen=True, slots=True)
class TickRule:
    """An instrument's tick: `below` for prices under `break_at`, `at_or_above` from it."""

    below: float
    at_or_above: float
    break_at: float = OPTION_TICK_BREAK

    def tick(self, price: float) -> float:
        """The minimum increment at `price`."""
        return self.below if price < self.break_at else self.at_or_above

    def _per_dollar(self, price: float) -> int:
        return round(1 / self.tick(price))

    def nearest(self, price: float) -> float:
        """`price` rounded to the nearest tick (half to even)."""
        n = self._per_dollar(price)
        return round(price * n) / n

    def floor(self, price: float) -> float:
        """The highest tick at or below `price` (a bid)."""
        n = self._per_dollar(price)
        return math.floor(price * n + _EPSILON) / n

    def ceil(self, price: float) -> float:
        """The lowest tick at or above `price` (an ask)."""
        n = self._per_dollar(price)
        return math.ceil(price * n - _EPSILON) / n

    def on_tick(self, price: float) -> bool:
        """Whether `price` is a whole number of ticks (and the double nearest that price)."""
        n = self._per_dollar(price)
        return price == round(price * n) / n

    def _per_dollar_array(self, prices: NDArray[np.float64]) -> NDArray[np.float64]:
        below, above = round(1 / self.below), round(1 / self.at_or_above)
        return np.where(prices < self.break_at, float(below), float(above))

    def nearest_array(self, prices: NDArray[np.float64]) -> NDArray[np.float64]:
        """`nearest` of every price."""
        n = self._per_dollar_array(prices)
        return np.rint(prices * n) / n  # type: ignore[no-any-return]

    def floor_array(self, prices: NDArray[np.float64]) -> NDArray[np.float64]:
        """`floor` of every price."""
        n = self._per_dollar_array(prices)
        return np.floor(prices * n + _EPSILON) / n  # type: ignore[no-any-return]

    def ceil_array(self, prices: NDArray[np.float64]) -> NDArray[np.float64]:
        """`ceil` of every price."""
        n = self._per_dollar_array(prices)
        return np.ceil(prices * n - _EPSILON) / n  # type: ignore[no-any-return]


EQUITY_TICKS = TickRule(0.01, 0.01)
ALL_PENNY_OPTION_TICKS = TickRule(0.01, 0.01)
PENNY_OPTION_TICKS = TickRule(0.01, 0.05)
STANDARD_OPTION_TICKS = TickRule(0.05, 0.10)


def option_ticks(root: str) -> TickRule:
    """The tick rule of the options on underlying `root`."""
    if root in ALL_PENNY_CLASSES:
        return ALL_PENNY_OPTION_TICKS
    if root in PENNY_PROGRAM_CLASSES:
        return PENNY_OPTION_TICKS
    return STANDARD_OPTION_TICKS


def price_difference(a: float, b: float) -> float:
    """a - b without float noise (0.04, not 0.03999999999999204)."""
    return round(a - b, PRICE_DECIMALS)


def midpoint(a: float, b: float) -> float:
    """The midpoint of two prices (a half tick is kept)."""
    return round((a + b) / 2, PRICE_DECIMALS)


def percent_of(part: float, whole: float) -> float:
    """`part` as a percentage of `whole` (> 0), to PERCENT_DECIMALS."""
    return round(part / whole * 100, PERCENT_DECIMALS)
