"""Black-Scholes-Merton prices and Greeks with a continuous dividend yield, over numpy arrays.

Every function broadcasts its inputs, so a whole chain is priced in one call (by the compiled
kernels, the same code the chain's implied volatilities and Greeks come from). Units follow the
contract: theta per calendar day (365 a year), vega per 1 volatility point (0.01) and rho per
1 rate point (0.01). Inputs must have time > 0 and sigma > 0; callers filter the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from optix_server.marketdata.pricing import bsm_kernels

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

DAYS_PER_YEAR = bsm_kernels.DAYS_PER_YEAR
POINT = bsm_kernels.POINT


@dataclass(frozen=True, slots=True)
class GreeksArrays:
    """Per-contract sensitivities, in the contract's units."""

    delta: FloatArray
    gamma: FloatArray
    theta: FloatArray
    vega: FloatArray
    rho: FloatArray

    @classmethod
    def from_rows(cls, rows: FloatArray, shape: tuple[int, ...]) -> GreeksArrays:
        """From a (5, n) array of delta, gamma, theta, vega and rho rows."""
        g = rows.reshape((5, *shape))
        # g[i, ...] rather than iterating g: a view of the row even for scalar inputs (shape
        # ()), where iteration would give numpy scalars instead of 0-d arrays.
        return cls(delta=g[0, ...], gamma=g[1, ...], theta=g[2, ...], vega=g[3, ...], rho=g[4, ...])


def flat_inputs(
    *values: ArrayLike, is_call: ArrayLike
) -> tuple[tuple[int, ...], list[FloatArray], BoolArray]:
    """The broadcast shape of the inputs and each as a flat contiguous float64 array (the
    kernels' calling convention), with `is_call` as a flat bool array."""
    arrays = [np.asarray(v, dtype=np.float64) for v in values]
    call = np.asarray(is_call, dtype=np.bool_)
    shapes = {a.shape for a in arrays} | {call.shape}
    # A chain's arrays all have one shape: skip the general broadcasting rules then.
    shape = shapes.pop() if len(shapes) == 1 else np.broadcast_shapes(*shapes)

    def flat(a: NDArray[Any]) -> NDArray[Any]:
        if a.shape != shape:
            a = np.broadcast_to(a, shape)
        return np.ascontiguousarray(a).ravel()

    return shape, [flat(a) for a in arrays], flat(call)


def bsm_price(
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    rate: ArrayLike,
    dividend_yield: ArrayLike,
    sigma: ArrayLike,
    is_call: ArrayLike,
) -> FloatArray:
    """Option prices per share."""
    shape, (s, k, tt, r, q, v), call = flat_inputs(
        spot, strike, t, rate, dividend_yield, sigma, is_call=is_call
    )
    out = np.empty(s.size)
    bsm_kernels.price_loop(s, k, tt, r, q, v, call, out)
    return out.reshape(shape)


def bsm_greeks(
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    rate: ArrayLike,
    dividend_yield: ArrayLike,
    sigma: ArrayLike,
    is_call: ArrayLike,
) -> GreeksArrays:
    """Delta, gamma, theta (per day), vega and rho (per point) for every contract."""
    shape, (s, k, tt, r, q, v), call = flat_inputs(
        spot, strike, t, rate, dividend_yield, sigma, is_call=is_call
    )
    out = np.empty((5, s.size))
    bsm_kernels.greeks_loop(s, k, tt, r, q, v, call, out)
    return GreeksArrays.from_rows(out, shape)
