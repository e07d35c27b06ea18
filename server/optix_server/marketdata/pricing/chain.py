"""Implied volatility and Greeks for a whole options chain in one compiled pass."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from optix_server.marketdata.models import Greeks
from optix_server.marketdata.pricing import iv_kernels
from optix_server.marketdata.pricing.bsm import FloatArray, GreeksArrays
from optix_server.marketdata.pricing.implied_vol import DEFAULT_TOLERANCE, finish_unconverged
from optix_server.marketdata.pricing.iv_guess import guess_table


@dataclass(frozen=True, slots=True)
class ChainAnalytics:
    """Per-contract model values; Greeks are NaN where the implied volatility was not found."""

    mark: FloatArray
    implied_volatility: FloatArray
    status: NDArray[np.int8]
    relative_error: FloatArray
    greeks: GreeksArrays
    in_the_money: NDArray[np.bool_]

    def rows(self) -> Iterator[tuple[float, float, int, Greeks | None, bool]]:
        """Per contract: mark, implied volatility, status, Greeks (None where the implied
        volatility was not found) and in-the-money, as Python values."""
        g = self.greeks
        for mark, iv, status, delta, gamma, theta, vega, rho, itm in zip(
            self.mark.tolist(),
            self.implied_volatility.tolist(),
            self.status.tolist(),
            g.delta.tolist(),
            g.gamma.tolist(),
            g.theta.tolist(),
            g.vega.tolist(),
            g.rho.tolist(),
            self.in_the_money.tolist(),
            strict=True,
        ):
            # NaN Greeks (delta != delta): no implied volatility to compute them at.
            greeks = None if delta != delta else Greeks(delta, gamma, theta, vega, rho)
            yield mark, iv, status, greeks, itm


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
    *,
    tolerance: float = DEFAULT_TOLERANCE,
) -> ChainAnalytics:
    """Mark every contract (mid of bid and ask, or last without an ask), invert the marks to
    implied volatilities (0 where not found) and compute the Greeks there; contracts sorted
    by expiration and strike share their common terms."""
    shape = np.shape(strike)
    k, tt, b, a, lp = (
        np.ascontiguousarray(x, dtype=np.float64).ravel() for x in (strike, t, bid, ask, last)
    )
    call = np.ascontiguousarray(is_call, dtype=np.bool_).ravel()
    n = k.size
    mark, sigma, error = np.empty(n), np.empty(n), np.empty(n)
    status = np.empty(n, dtype=np.int8)
    greeks = np.empty((5, n))
    itm = np.empty(n, dtype=np.bool_)
    unsolved = iv_kernels.chain_loop(
        float(spot),
        float(rate),
        float(dividend_yield),
        k,
        tt,
        call,
        b,
        a,
        lp,
        tolerance,
        guess_table(),
        mark,
        sigma,
        status,
        error,
        greeks,
        itm,
    )
    if unsolved:
        finish_unconverged(
            mark,
            float(spot),
            k,
            tt,
            float(rate),
            float(dividend_yield),
            call,
            tolerance,
            sigma,
            status,
            error,
            greeks,
        )
    return ChainAnalytics(
        mark=mark.reshape(shape),
        implied_volatility=sigma.reshape(shape),
        status=status.reshape(shape),
        relative_error=error.reshape(shape),
        greeks=GreeksArrays.from_rows(greeks, shape),
        in_the_money=itm.reshape(shape),
    )
