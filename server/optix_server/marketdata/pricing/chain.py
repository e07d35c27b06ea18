"""Implied volatility and Greeks for a whole options chain in one vectorised pass."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from optix_server.marketdata.pricing.bsm import FloatArray, GreeksArrays, bsm_greeks
from optix_server.marketdata.pricing.implied_vol import IVStatus, implied_volatility


@dataclass(frozen=True, slots=True)
class ChainAnalytics:
    """Per-contract model values; Greeks are NaN where the implied volatility was not found."""

    mark: FloatArray
    implied_volatility: FloatArray
    status: NDArray[np.int8]
    relative_error: FloatArray
    greeks: GreeksArrays
    in_the_money: NDArray[np.bool_]


def mid_marks(bid: FloatArray, ask: FloatArray, last: FloatArray) -> FloatArray:
    """Mid of bid and ask, or last when there is no ask (no two-sided market at all)."""
    return np.where(ask > 0, 0.5 * (np.maximum(bid, 0.0) + ask), last)  # type: ignore[no-any-return]


def analyze_chain(
    spot: float,
    rate: float,
    dividend_yield: float,
    strike: FloatArray,
    t: FloatArray,
    is_call: NDArray[np.bool_],
    bid: FloatArray,
    ask: FloatArray,
    last: FloatArray,
) -> ChainAnalytics:
    """Invert every mark to an implied volatility and compute the Greeks at it."""
    mark = mid_marks(bid, ask, last)
    iv = implied_volatility(mark, spot, strike, t, rate, dividend_yield, is_call, bid=bid)
    ok = iv.status == IVStatus.OK
    sigma = np.where(ok, iv.sigma, 0.2)
    t_safe = np.where(ok, t, 1.0)
    with np.errstate(all="ignore"):
        g = bsm_greeks(spot, strike, t_safe, rate, dividend_yield, sigma, is_call)
    nan = np.nan
    greeks = GreeksArrays(
        delta=np.where(ok, g.delta, nan),
        gamma=np.where(ok, g.gamma, nan),
        theta=np.where(ok, g.theta, nan),
        vega=np.where(ok, g.vega, nan),
        rho=np.where(ok, g.rho, nan),
    )
    itm = np.where(is_call, strike < spot, strike > spot)
    return ChainAnalytics(
        mark=mark,
        implied_volatility=np.where(ok, iv.sigma, 0.0),
        status=iv.status,
        relative_error=iv.relative_error,
        greeks=greeks,
        in_the_money=itm,
    )
