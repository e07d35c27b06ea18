"""Vectorised implied volatility: Halley steps in log-price from a tabulated start, with a
scalar Brent fallback, to 1e-10 relative price error or a status saying why not.

Every contract is first turned into its out-of-the-money twin (put-call parity: an
in-the-money option's time value is the OTM option's price) and normalised to a Black call
b(z, s) = e^{z/2} N(z/s + s/2) - e^{-z/2} N(z/s - s/2) with z = -|ln(S e^{-qT} / K e^{-rT})|
and s = sigma sqrt(T). That price is smooth in log space from the money to the far wings, so
two or three steps reach machine precision.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import brentq
from scipy.special import ndtr

from optix_server.marketdata.pricing.bsm import FloatArray, bsm_price
from optix_server.marketdata.pricing.iv_guess import total_volatility_guess

DEFAULT_TOLERANCE = 1e-10
# The solver iterates to a tighter target than it promises, so rounding in the final price
# cannot push a solved contract back over the promised tolerance.
_STOP_FACTOR = 1e-2
_MIN_SIGMA = 1e-8
_MAX_SIGMA = 2.0**11
_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)
_EPS4 = 4.0 * np.finfo(np.float64).eps


class IVStatus(enum.IntEnum):
    """Why an implied volatility was or was not found (values match the contract's enum)."""

    OK = 1
    BELOW_INTRINSIC = 2
    NO_BID = 3
    NOT_CONVERGED = 4
    EXPIRED = 5
    ABOVE_MAXIMUM = 6


@dataclass(frozen=True, slots=True)
class ImpliedVolResult:
    """Implied volatilities (NaN unless OK), statuses and the achieved relative price errors."""

    sigma: FloatArray
    status: NDArray[np.int8]
    relative_error: FloatArray
    iterations: int


def _f64(value: ArrayLike, shape: tuple[int, ...]) -> FloatArray:
    return np.broadcast_to(np.asarray(value, dtype=np.float64), shape).ravel()


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
    inputs = [price, spot, strike, t, rate, dividend_yield, is_call, 1.0 if bid is None else bid]
    shape = np.broadcast_shapes(*(np.shape(a) for a in inputs))
    p, s, k, tt, r, q, b = (
        _f64(a, shape) for a in (price, spot, strike, t, rate, dividend_yield, inputs[-1])
    )
    call = np.broadcast_to(np.asarray(is_call, dtype=bool), shape).ravel()
    n = p.size
    with np.errstate(all="ignore"):
        # Whole-array arithmetic first (invalid rows produce NaNs that are masked out below):
        # one pass is cheaper than gathering subsets for each step.
        spot_df = s * np.exp(-q * tt)
        strike_df = k * np.exp(-r * tt)
        parity = spot_df - strike_df
        # The OTM twin's price: the option's own price when OTM, its time value when ITM.
        otm = p - np.maximum(np.where(call, parity, -parity), 0.0)
        status = np.where(
            ~(tt > 0),
            np.int8(IVStatus.EXPIRED),
            np.where(
                ~(b > 0) | ~(p > 0) | ~np.isfinite(p),
                np.int8(IVStatus.NO_BID),
                np.where(
                    ~(otm > 0),
                    np.int8(IVStatus.BELOW_INTRINSIC),
                    np.where(
                        p >= np.where(call, spot_df, strike_df),
                        np.int8(IVStatus.ABOVE_MAXIMUM),
                        np.int8(0),
                    ),
                ),
            ),
        ).astype(np.int8)
    sigma = np.full(n, np.nan)
    rel_err = np.full(n, np.nan)
    idx = np.flatnonzero(status == 0)
    iterations = 0
    if idx.size:
        sd, kd, pt = spot_df[idx], strike_df[idx], p[idx]
        sqrt_t = np.sqrt(tt[idx])
        z = -np.abs(np.log(sd / kd))
        scale = np.sqrt(sd * kd)
        # Stop on the error relative to the option's own price (what the status promises).
        stop = (tolerance * _STOP_FACTOR) * pt / scale
        total, errors, iterations = _solve(z, otm[idx] / scale, stop, max_iterations)
        # The normalised error is an absolute price error once scaled back.
        errors *= scale / pt
        for i in np.flatnonzero(~(errors <= tolerance)):
            j = idx[i]
            sig, errors[i] = _brent(p[j], s[j], k[j], tt[j], r[j], q[j], bool(call[j]))
            total[i] = sig * sqrt_t[i]
        ok = errors <= tolerance
        sigma[idx] = np.where(ok, total / sqrt_t, np.nan)
        rel_err[idx] = errors
        status[idx] = np.where(ok, np.int8(IVStatus.OK), np.int8(IVStatus.NOT_CONVERGED))
    return ImpliedVolResult(
        sigma=sigma.reshape(shape),
        status=status.reshape(shape),
        relative_error=rel_err.reshape(shape),
        iterations=iterations,
    )


def _solve(
    z: FloatArray, target: FloatArray, stop: FloatArray, max_iterations: int
) -> tuple[FloatArray, FloatArray, int]:
    """Total volatilities s with b(z, s) = target (all z <= 0, 0 < target < e^{z/2}) to within
    `stop`, and the final absolute errors |b(z, s) - target| in normalised units."""
    ez2 = np.exp(0.5 * z)
    total = total_volatility_guess(-z, target)
    errors = np.full_like(total, np.inf)
    # Work only on the contracts still unsolved: almost all finish within three steps.
    idx = np.arange(total.size)
    a_z, a_e, a_t, a_s, a_stop = z, ez2, target, total, stop
    a_lt = np.log(a_t)
    iterations = 0
    while idx.size and iterations < max_iterations:
        iterations += 1
        d1 = a_z / a_s + 0.5 * a_s
        d2 = d1 - a_s
        price = a_e * ndtr(d1) - ndtr(d2) / a_e
        f = price - a_t
        errors[idx] = np.abs(f)
        done = errors[idx] <= a_stop
        vega = a_e * _INV_SQRT_2PI * np.exp(-0.5 * d1 * d1)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            # Halley on g = ln(price) - ln(target): g' = vega / price and
            # g'' = volga / price - g'^2 with volga = vega d1 d2 / s (cubic convergence).
            g1 = vega / price
            g2 = vega * d1 * d2 / (a_s * price) - g1 * g1
            newton = (np.log(price) - a_lt) / g1
            step = a_s - newton / (1.0 - 0.5 * newton * g2 / g1)
        wild = ~np.isfinite(step) | (step <= 0.25 * a_s) | (step >= 4.0 * a_s)
        if wild.any():
            # Far from the root (or price underflow): move by a bounded factor toward it.
            step = np.where(wild, np.where(f < 0, 2.0 * a_s, 0.5 * a_s), step)
        stalled = np.abs(step - a_s) <= _EPS4 * a_s
        total[idx] = np.where(done, a_s, step)
        keep = ~(done | stalled)
        if not keep.all():
            idx = idx[keep]
            a_z, a_e, a_t, a_lt = a_z[keep], a_e[keep], a_t[keep], a_lt[keep]
            a_stop = a_stop[keep]
        a_s = total[idx]
    if idx.size:
        # Out of iterations or stalled: measure where they ended up.
        d1 = z[idx] / total[idx] + 0.5 * total[idx]
        price = ez2[idx] * ndtr(d1) - ndtr(d1 - total[idx]) / ez2[idx]
        errors[idx] = np.abs(price - target[idx])
    return total, errors, iterations


def _brent(
    target: float, s: float, k: float, t: float, r: float, q: float, call: bool
) -> tuple[float, float]:
    """Scalar fallback for the rare contract the vectorised steps could not finish;
    returns (sigma, relative error)."""

    def f(v: float) -> float:
        return float(bsm_price(s, k, t, r, q, v, call)) - target

    try:
        root = float(
            brentq(f, _MIN_SIGMA, _MAX_SIGMA, xtol=1e-300, rtol=4 * np.finfo(np.float64).eps)
        )
    except (ValueError, RuntimeError):
        return float("nan"), float("inf")
    return root, abs(f(root)) / target
