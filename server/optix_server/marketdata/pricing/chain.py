"""Implied volatility and Greeks for a whole options chain in one vectorised pass."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from optix_server.marketdata.pricing.bsm import FloatArray, GreeksArrays, greeks_from_terms
from optix_server.marketdata.pricing.implied_vol import Evaluation, solve


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


def greeks_at_solution(ev: Evaluation) -> GreeksArrays:
    """`bsm_greeks` at the solved volatilities, bit for bit, from the terms the solver already
    computed; NaN where the status is not OK."""
    g = greeks_from_terms(
        ev.spot,
        ev.strike,
        ev.t,
        ev.rate,
        ev.dividend_yield,
        ev.sigma,
        ev.sign,
        ev.sqrt_t,
        ev.discount_q,
        ev.discount_r,
        ev.pdf_d1,
        ev.n_d1,
        ev.n_d2,
    )
    if not ev.ok.all():
        bad = ~ev.ok
        for a in (g.delta, g.gamma, g.theta, g.vega, g.rho):
            a[bad] = np.nan
    return g


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
    iv, ev = solve(mark, spot, strike, t, rate, dividend_yield, is_call, bid=bid)
    with np.errstate(all="ignore"):
        greeks = greeks_from_terms_reshaped(ev, iv.sigma.shape)
    sigma = iv.sigma
    if not ev.ok.all():
        sigma = np.where(ev.ok.reshape(sigma.shape), sigma, 0.0)
    itm = np.where(is_call, strike < spot, strike > spot)
    return ChainAnalytics(
        mark=mark,
        implied_volatility=sigma,
        status=iv.status,
        relative_error=iv.relative_error,
        greeks=greeks,
        in_the_money=itm,
    )


def greeks_from_terms_reshaped(ev: Evaluation, shape: tuple[int, ...]) -> GreeksArrays:
    """`greeks_at_solution` in the chain's own shape."""
    g = greeks_at_solution(ev)
    return GreeksArrays(
        delta=g.delta.reshape(shape),
        gamma=g.gamma.reshape(shape),
        theta=g.theta.reshape(shape),
        vega=g.vega.reshape(shape),
        rho=g.rho.reshape(shape),
    )
