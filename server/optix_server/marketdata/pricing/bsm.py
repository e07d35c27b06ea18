"""Black-Scholes-Merton prices and Greeks with a continuous dividend yield, over numpy arrays.

Every function broadcasts its inputs, so a whole chain is priced in one call. Units follow the
contract: theta per calendar day (365 a year), vega per 1 volatility point (0.01) and rho per
1 rate point (0.01). Inputs must have time > 0 and sigma > 0; callers filter the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtr

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

DAYS_PER_YEAR = 365.0
POINT = 0.01
_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)


@dataclass(frozen=True, slots=True)
class GreeksArrays:
    """Per-contract sensitivities, in the contract's units."""

    delta: FloatArray
    gamma: FloatArray
    theta: FloatArray
    vega: FloatArray
    rho: FloatArray


def _f(x: ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def _npdf(x: FloatArray) -> FloatArray:
    return _INV_SQRT_2PI * np.exp(-0.5 * x * x)  # type: ignore[no-any-return]


def _d1_d2(
    spot: FloatArray,
    strike: FloatArray,
    t: FloatArray,
    r: FloatArray,
    q: FloatArray,
    sigma: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    sqrt_t = np.sqrt(t)
    vol_sqrt_t = sigma * sqrt_t
    d1 = (np.log(spot / strike) + (r - q + 0.5 * sigma * sigma) * t) / vol_sqrt_t
    return d1, d1 - vol_sqrt_t, sqrt_t


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
    s, k, tt, r, q, v = _f(spot), _f(strike), _f(t), _f(rate), _f(dividend_yield), _f(sigma)
    call = np.asarray(is_call, dtype=bool)
    d1, d2, _ = _d1_d2(s, k, tt, r, q, v)
    df_q = np.exp(-q * tt)
    df_r = np.exp(-r * tt)
    # N(-x) instead of 1 - N(x) keeps deep out-of-the-money prices accurate to the last digit.
    sign = np.where(call, 1.0, -1.0)
    return sign * (s * df_q * ndtr(sign * d1) - k * df_r * ndtr(sign * d2))  # type: ignore[no-any-return]


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
    s, k, tt, r, q, v = _f(spot), _f(strike), _f(t), _f(rate), _f(dividend_yield), _f(sigma)
    call = np.asarray(is_call, dtype=bool)
    d1, d2, sqrt_t = _d1_d2(s, k, tt, r, q, v)
    df_q = np.exp(-q * tt)
    df_r = np.exp(-r * tt)
    pdf_d1 = _npdf(d1)
    sign = np.where(call, 1.0, -1.0)
    return greeks_from_terms(
        s, k, tt, r, q, v, sign, sqrt_t, df_q, df_r, pdf_d1, ndtr(sign * d1), ndtr(sign * d2)
    )


def greeks_from_terms(
    s: FloatArray,
    k: FloatArray,
    tt: FloatArray,
    r: FloatArray,
    q: FloatArray,
    v: FloatArray,
    sign: FloatArray,
    sqrt_t: FloatArray,
    df_q: FloatArray,
    df_r: FloatArray,
    pdf_d1: FloatArray,
    n_d1: FloatArray,
    n_d2: FloatArray,
) -> GreeksArrays:
    """The Greeks from already computed terms: sign +1 for calls and -1 for puts, sqrt(T),
    e^{-qT}, e^{-rT}, n(d1), N(sign d1) and N(sign d2). Every caller gets the same operations
    in the same order, so the same inputs give the same bits (theta of a deep in-the-money
    option is a small difference of large terms, where the order shows)."""
    delta = sign * df_q
    delta *= n_d1
    gamma = df_q * pdf_d1
    gamma /= s * v * sqrt_t
    theta_year = -s * df_q
    theta_year *= pdf_d1
    theta_year *= v
    theta_year /= 2.0 * sqrt_t
    theta_year -= sign * r * k * df_r * n_d2
    theta_year += sign * q * s * df_q * n_d1
    theta_year /= DAYS_PER_YEAR
    vega = s * df_q
    vega *= pdf_d1
    vega *= sqrt_t
    vega *= POINT
    rho = sign * k * tt
    rho *= df_r
    rho *= n_d2
    rho *= POINT
    return GreeksArrays(delta=delta, gamma=gamma, theta=theta_year, vega=vega, rho=rho)
