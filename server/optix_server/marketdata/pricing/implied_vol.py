"""Vectorised implied volatility: Halley steps in log-price from a tabulated start, with a
scalar Brent fallback, to 1e-10 relative price error or a status saying why not.

Every contract is first turned into its out-of-the-money twin (put-call parity: an
in-the-money option's time value is the OTM option's price) and normalised to a Black call
b(z, s) = e^{z/2} N(z/s + s/2) - e^{-z/2} N(z/s - s/2) with z = -|ln(S e^{-qT} / K e^{-rT})|
and s = sigma sqrt(T). That price is smooth in log space from the money to the far wings, and
the tabulated start is close enough that one step almost always reaches machine precision.

The hot path is written for a chain of a few thousand contracts, where each numpy call costs
about as much as its arithmetic: every contract runs the same fixed sequence (start, evaluate,
one Halley step, then the option's own price at the returned sigma, by the operations of
`bsm_price`) with no gathering, transcendental calls are batched, and only the rare contract
still over 1e-12 after that is iterated again on its own. That last evaluation is kept
(`Evaluation`) so the Greeks need no further exp or N(x) and equal `bsm_greeks` bit for bit.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import brentq
from scipy.special import ndtr

from optix_server.marketdata.pricing.bsm import BoolArray, FloatArray, bsm_price
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


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The terms of Black-Scholes-Merton at the solved volatilities (flat arrays, or 0-d for
    inputs given as scalars), kept so the Greeks need no further exp, log or N(x): sign is +1
    for calls and -1 for puts, `n_d1`, `n_d2` are N(sign d1), N(sign d2). Values of contracts
    whose status is not OK are meaningless."""

    ok: BoolArray
    spot: FloatArray
    strike: FloatArray
    t: FloatArray
    rate: FloatArray
    dividend_yield: FloatArray
    sigma: FloatArray
    sign: FloatArray
    sqrt_t: FloatArray
    discount_q: FloatArray
    discount_r: FloatArray
    pdf_d1: FloatArray
    n_d1: FloatArray
    n_d2: FloatArray


def _f64(value: ArrayLike, shape: tuple[int, ...]) -> FloatArray:
    """A flat float64 array of `shape`, or a 0-d one for a scalar (numpy broadcasts it for
    free; copying it out to every contract would not be)."""
    a = np.asarray(value, dtype=np.float64)
    if a.ndim == 0:
        return a
    if a.shape == shape:
        return a.ravel()
    return np.broadcast_to(a, shape).ravel()


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
) -> tuple[ImpliedVolResult, Evaluation]:
    """`implied_volatility`, plus the model's terms at the solution for the Greeks."""
    inputs = [price, spot, strike, t, rate, dividend_yield, is_call, 1.0 if bid is None else bid]
    shapes = {np.shape(a) for a in inputs}
    shapes.discard(())
    # A chain's arrays all have one shape: skip the general (and slower) broadcasting rules.
    shape = shapes.pop() if len(shapes) == 1 else np.broadcast_shapes(*shapes)
    p, s, k, tt, r, q, b = (
        _f64(a, shape) for a in (price, spot, strike, t, rate, dividend_yield, inputs[-1])
    )
    call = np.asarray(is_call, dtype=bool)
    if call.shape != shape:
        call = np.broadcast_to(call, shape)
    call = call.ravel()
    if p.ndim == 0:
        p = np.broadcast_to(p, shape).ravel()
    n = p.size
    with np.errstate(all="ignore"):
        # Whole-array arithmetic on every contract (invalid ones are patched below): one pass
        # is cheaper than gathering subsets, and transcendentals of one kind share a call.
        work = np.empty((2, n))
        np.multiply(q, tt, out=work[0])
        np.multiply(r, tt, out=work[1])
        np.negative(work, out=work)
        np.exp(work, out=work)
        dq, dr = work[0], work[1]
        spot_df = s * dq
        strike_df = k * dr
        sign = call * 2.0 - 1.0
        # The OTM twin's price: the option's own price when OTM, its time value when ITM.
        otm = p - np.maximum(sign * (spot_df - strike_df), 0.0)
        scale = np.sqrt(spot_df * strike_df)
        logs = np.empty((3, n))
        np.divide(spot_df, strike_df, out=logs[0])
        e = np.sqrt(logs[0])  # e^{x/2}, x = ln(F/K)
        np.divide(otm, scale, out=logs[1])
        target = logs[1].copy()
        np.divide(s, k, out=logs[2])
        np.log(logs, out=logs)
        z, lt, log_moneyness = logs[0], logs[1], logs[2]
        np.negative(np.abs(z, out=z), out=z)
        np.minimum(e, 1.0 / e, out=e)  # e^{z/2}
        valid = (tt > 0) & (b > 0) & (p > 0) & (otm > 0) & (p < np.where(call, spot_df, strike_df))
        all_valid = bool(valid.all())  # NaN prices fail p > 0
        if all_valid:
            status = np.full(n, np.int8(IVStatus.OK))
        else:
            status = _statuses(p, tt, b, otm, valid)
            bad = ~valid
            # Benign stand-ins keep the fixed steps free of NaN and out-of-table indices.
            z[bad], e[bad], target[bad], lt[bad] = -0.1, np.exp(-0.05), 0.01, np.log(0.01)
        # Normalised prices are in units of `scale`; stop on the error relative to the
        # option's own price (what the status promises).
        stop = p / scale
        stop *= tolerance * _STOP_FACTOR
        total = _first_step(z, e, target, lt, stop)
        sqrt_t = np.sqrt(tt)
        sigma = total / sqrt_t
        # The error that counts is the one a client sees: the option's own price at the
        # returned sigma, by the same formulas as `bsm_price` (the terms feed the Greeks).
        terms = _Terms(tt, r, q, sign, sqrt_t, log_moneyness, spot_df, strike_df)
        pdf_d1, n_d1, n_d2, errors = terms.evaluate(sigma, p)
        iterations = 2
        pending = ~(errors <= tolerance * _STOP_FACTOR)
        if not all_valid:
            pending &= valid
        idx = np.flatnonzero(pending)
        if idx.size and max_iterations > 2:
            # The rare contract still off: iterate on its own, then re-measure.
            total[idx], used = _iterate(
                z[idx], e[idx], target[idx], lt[idx], stop[idx], total[idx], max_iterations - 2
            )
            iterations += used
            sigma[idx] = total[idx] / (sqrt_t if sqrt_t.ndim == 0 else sqrt_t[idx])
            terms.update(idx, sigma, p, pdf_d1, n_d1, n_d2, errors)
        ok = errors <= tolerance
        if not all_valid:
            ok &= valid
        if not ok.all():
            for j in np.flatnonzero(valid & ~ok):
                sig, _ = _brent(
                    p[j], at(s, j), at(k, j), at(tt, j), at(r, j), at(q, j), bool(call[j])
                )
                sigma[j] = sig
                terms.update(np.array([j]), sigma, p, pdf_d1, n_d1, n_d2, errors)
                ok[j] = errors[j] <= tolerance
            sigma[~ok] = np.nan
            status[valid & ~ok] = np.int8(IVStatus.NOT_CONVERGED)
            status[ok] = np.int8(IVStatus.OK)
            if not all_valid:
                errors[~valid] = np.nan
    result = ImpliedVolResult(
        sigma=sigma.reshape(shape),
        status=status.reshape(shape),
        relative_error=errors.reshape(shape),
        iterations=iterations,
    )
    evaluation = Evaluation(
        ok=ok,
        spot=s,
        strike=k,
        t=tt,
        rate=r,
        dividend_yield=q,
        sigma=sigma,
        sign=sign,
        sqrt_t=sqrt_t,
        discount_q=dq,
        discount_r=dr,
        pdf_d1=pdf_d1,
        n_d1=n_d1,
        n_d2=n_d2,
    )
    return result, evaluation


def at(a: FloatArray, j: int | np.intp) -> float:
    """Element `j` of a per-contract array, or the value of a 0-d one."""
    return float(a if a.ndim == 0 else a[j])


class _Terms:
    """Black-Scholes-Merton at given volatilities, operation for operation as `bsm_price` and
    `bsm_greeks` (so clients reproduce prices and Greeks to the last bits), reusing the
    solver's discount factors, sqrt(T) and ln(S/K)."""

    def __init__(
        self,
        tt: FloatArray,
        r: FloatArray,
        q: FloatArray,
        sign: FloatArray,
        sqrt_t: FloatArray,
        log_moneyness: FloatArray,
        spot_df: FloatArray,
        strike_df: FloatArray,
    ) -> None:
        self.args = (tt, r, q, sign, sqrt_t, log_moneyness, spot_df, strike_df)

    def evaluate(
        self, sigma: FloatArray, p: FloatArray, idx: NDArray[np.intp] | None = None
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """n(d1), N(sign d1), N(sign d2) and the price's error relative to `p` at `sigma`
        (of the contracts at `idx` only, when given)."""
        tt, r, q, sign, sqrt_t, log_moneyness, spot_df, strike_df = (
            a if idx is None or a.ndim == 0 else a[idx] for a in self.args
        )
        if idx is not None:
            sigma, p = sigma[idx], p[idx]
        vol_sqrt_t = sigma * sqrt_t
        d1 = 0.5 * sigma * sigma
        d1 += r - q
        d1 *= tt
        d1 += log_moneyness
        d1 /= vol_sqrt_t
        d2 = d1 - vol_sqrt_t
        pdf_d1 = -0.5 * d1 * d1
        np.exp(pdf_d1, out=pdf_d1)
        pdf_d1 *= _INV_SQRT_2PI
        d1 *= sign
        d2 *= sign
        n_d1 = ndtr(d1, out=d1)
        n_d2 = ndtr(d2, out=d2)
        error = spot_df * n_d1
        error -= strike_df * n_d2
        error *= sign
        error -= p
        np.abs(error, out=error)
        error /= p
        return pdf_d1, n_d1, n_d2, error

    def update(
        self,
        idx: NDArray[np.intp],
        sigma: FloatArray,
        p: FloatArray,
        *out: FloatArray,
    ) -> None:
        """Re-evaluate the contracts at `idx` into `out` (n(d1), N(d1), N(d2), errors)."""
        for dest, value in zip(out, self.evaluate(sigma, p, idx), strict=True):
            dest[idx] = value


def _statuses(
    p: FloatArray, tt: FloatArray, b: FloatArray, otm: FloatArray, valid: BoolArray
) -> NDArray[np.int8]:
    """Why each invalid contract cannot be solved, first reason first (0 for valid ones);
    worked out on the invalid contracts only, usually a few."""
    status = np.zeros(p.size, dtype=np.int8)
    idx = np.flatnonzero(~valid)
    tt, b = (a if a.ndim == 0 else a[idx] for a in (tt, b))
    p, otm = p[idx], otm[idx]
    status[idx] = np.where(
        ~(tt > 0),
        np.int8(IVStatus.EXPIRED),
        np.where(
            ~(b > 0) | ~(p > 0) | ~np.isfinite(p),
            np.int8(IVStatus.NO_BID),
            np.where(
                ~(otm > 0), np.int8(IVStatus.BELOW_INTRINSIC), np.int8(IVStatus.ABOVE_MAXIMUM)
            ),
        ),
    )
    return status


def _evaluate(
    z: FloatArray, e: FloatArray, total: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """d1, d2, the normalised price and vega at total volatility `total`."""
    d1 = z / total
    d1 += 0.5 * total
    d2 = d1 - total
    price = ndtr(d1)
    price *= e
    price -= ndtr(d2) / e
    vega = d1 * d1
    vega *= -0.5
    np.exp(vega, out=vega)
    vega *= e
    vega *= _INV_SQRT_2PI
    return d1, d2, price, vega


def _halley(
    total: FloatArray,
    d1: FloatArray,
    d2: FloatArray,
    price: FloatArray,
    vega: FloatArray,
    target: FloatArray,
    lt: FloatArray,
) -> FloatArray:
    """One Halley step on g = ln(price) - ln(target), bounded to a factor 4 either way.

    g' = vega / price and g'' = volga / price - g'^2 with volga = vega d1 d2 / s, so
    g''/g' = d1 d2 / s - g' (cubic convergence)."""
    g1 = vega / price
    curvature = d1 * d2
    curvature /= total
    curvature -= g1
    newton = np.log(price)
    newton -= lt
    newton /= g1
    curvature *= newton
    curvature *= -0.5
    curvature += 1.0
    newton /= curvature
    step = total - newton
    wild = ~((step > 0.25 * total) & (step < 4.0 * total))
    if wild.any():
        # Far from the root (or price underflow): move by a bounded factor toward it.
        step[wild] = np.where(price[wild] < target[wild], 2.0, 0.5) * total[wild]
    return step


def _first_step(
    z: FloatArray, e: FloatArray, target: FloatArray, lt: FloatArray, stop: FloatArray
) -> FloatArray:
    """The tabulated start and one Halley step from it, on every contract at once (kept
    where the start is already within `stop`): total volatilities s with b(z, s) close to
    `target` (all z <= 0, 0 < target < e^{z/2})."""
    total = total_volatility_guess(-z, lt)
    d1, d2, price, vega = _evaluate(z, e, total)
    step = _halley(total, d1, d2, price, vega, target, lt)
    price -= target
    done = np.abs(price, out=price) <= stop
    if done.any():
        step[done] = total[done]
    return step


def _iterate(
    z: FloatArray,
    e: FloatArray,
    target: FloatArray,
    lt: FloatArray,
    stop: FloatArray,
    total: FloatArray,
    max_iterations: int,
) -> tuple[FloatArray, int]:
    """Evaluate-and-step from `total` until |b(z, s) - target| <= `stop` or a step stalls,
    shrinking to the contracts still going; returns s and the number of evaluations."""
    total = total.copy()
    idx = np.arange(total.size)
    iterations = 0
    while idx.size and iterations < max_iterations:
        iterations += 1
        a_s = total[idx]
        d1, d2, price, vega = _evaluate(z, e, a_s)
        done = np.abs(price - target) <= stop
        step = _halley(a_s, d1, d2, price, vega, target, lt)
        stalled = np.abs(step - a_s) <= _EPS4 * a_s
        total[idx] = np.where(done | stalled, a_s, step)
        keep = ~(done | stalled)
        idx, z, e, target, lt, stop = (
            idx[keep],
            z[keep],
            e[keep],
            target[keep],
            lt[keep],
            stop[keep],
        )
    return total, iterations


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
