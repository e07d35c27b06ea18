"""Implied volatility for a whole chain at once, to 1e-10 relative price error or a status
saying why not, with the Greeks at the solution (iv_kernels.solve_loop); a scalar Brent search
finishes the rare contract the Halley steps could not."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import brentq

from optix_server.marketdata.pricing import iv_kernels
from optix_server.marketdata.pricing.bsm import (
    FloatArray,
    GreeksArrays,
    bsm_greeks,
    bsm_price,
    flat_inputs,
)
from optix_server.marketdata.pricing.iv_guess import guess_table
from optix_server.marketdata.pricing.status import IVStatus

DEFAULT_TOLERANCE = 1e-10
_MIN_SIGMA = 1e-8
_MAX_SIGMA = 2.0**11


@dataclass(frozen=True, slots=True)
class ImpliedVolResult:
    """Implied volatilities (NaN unless OK), statuses and the achieved relative price errors."""

    sigma: FloatArray
    status: NDArray[np.int8]
    relative_error: FloatArray
    iterations: int


def implied_volatility(
    price: ArrayLike,
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    rate: ArrayLike,
    dividend_yield: ArrayLike,
    is_call: ArrayLike,
    *,
    bid: ArrayLike | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    max_iterations: int = 50,
) -> ImpliedVolResult:
    """Invert prices to volatilities for a whole chain at once."""
    result, _ = solve(
        price,
        spot,
        strike,
        t,
        rate,
        dividend_yield,
        is_call,
        bid=bid,
        tolerance=tolerance,
        max_iterations=max_iterations,
    )
    return result


def solve(
    price: ArrayLike,
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    rate: ArrayLike,
    dividend_yield: ArrayLike,
    is_call: ArrayLike,
    *,
    bid: ArrayLike | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    max_iterations: int = 50,
) -> tuple[ImpliedVolResult, GreeksArrays]:
    """`implied_volatility`, plus the Greeks at the solved volatilities (NaN where the status
    is not OK), equal to `bsm_greeks` there bit for bit."""
    shape, (p, s, k, tt, r, q, b), call = flat_inputs(
        price, spot, strike, t, rate, dividend_yield, 1.0 if bid is None else bid, is_call=is_call
    )
    n = p.size
    sigma, error = np.empty(n), np.empty(n)
    status = np.empty(n, dtype=np.int8)
    greeks = np.empty((5, n))
    iterations, unsolved = iv_kernels.solve_loop(
        p,
        s,
        k,
        tt,
        r,
        q,
        call,
        b,
        tolerance,
        max_iterations,
        guess_table(),
        sigma,
        status,
        error,
        greeks,
    )
    if unsolved:
        finish_unconverged(p, s, k, tt, r, q, call, tolerance, sigma, status, error, greeks)
    result = ImpliedVolResult(
        sigma=sigma.reshape(shape),
        status=status.reshape(shape),
        relative_error=error.reshape(shape),
        iterations=int(iterations),
    )
    return result, GreeksArrays.from_rows(greeks, shape)


def finish_unconverged(
    price: FloatArray,
    s: FloatArray | float,
    k: FloatArray,
    t: FloatArray,
    r: FloatArray | float,
    q: FloatArray | float,
    call: NDArray[np.bool_],
    tolerance: float,
    sigma: FloatArray,
    status: NDArray[np.int8],
    error: FloatArray,
    greeks: FloatArray,
) -> None:
    """Run brent_fallback on each contract the kernels left NOT_CONVERGED (rare) and write
    what it finds into the kernels' outputs; spot, rate and yield may be per chain."""

    def at(a: FloatArray | float, j: np.intp) -> float:
        return a if isinstance(a, float) else float(a[j])

    for j in np.flatnonzero(status == IVStatus.NOT_CONVERGED):
        found = brent_fallback(
            float(price[j]),
            at(s, j),
            float(k[j]),
            float(t[j]),
            at(r, j),
            at(q, j),
            bool(call[j]),
            tolerance,
        )
        error[j] = found.relative_error
        if found.greeks is not None:
            sigma[j], status[j], greeks[:, j] = found.sigma, IVStatus.OK, found.greeks


@dataclass(frozen=True, slots=True)
class BrentResult:
    """A contract solved on its own: sigma and Greeks (delta, gamma, theta, vega, rho) when
    the relative price error reached the tolerance, else None."""

    sigma: float
    relative_error: float
    greeks: tuple[float, float, float, float, float] | None


def brent_fallback(
    price: float, s: float, k: float, t: float, r: float, q: float, call: bool, tolerance: float
) -> BrentResult:
    """Bracket and bisect one contract the Halley steps could not finish (rare). Prices and
    Greeks come from bsm_price/bsm_greeks, so the bits agree with the rest of the chain."""

    def excess(v: float) -> float:
        return float(bsm_price(s, k, t, r, q, v, call)) - price

    try:
        root = float(
            brentq(excess, _MIN_SIGMA, _MAX_SIGMA, xtol=1e-300, rtol=4 * np.finfo(np.float64).eps)
        )
    except (ValueError, RuntimeError):
        return BrentResult(math.nan, math.inf, None)
    relative = abs(excess(root)) / price
    if relative > tolerance:
        return BrentResult(math.nan, relative, None)
    g = bsm_greeks(s, k, t, r, q, root, call)
    return BrentResult(
        root,
        relative,
        (float(g.delta), float(g.gamma), float(g.theta), float(g.vega), float(g.rho)),
    )
