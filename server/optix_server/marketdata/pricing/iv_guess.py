"""A starting point for the implied volatility solver, accurate to a fraction of a percent,
so the solver's Halley steps finish in two or three evaluations.

It interpolates a fixed table of the inverse of the normalised out-of-the-money Black price
b(z, s) = e^{z/2} N(z/s + s/2) - e^{-z/2} N(z/s - s/2), z = -|ln(F/K)| <= 0, s = sigma sqrt(T).
Prices are indexed by y = 1 / (1 + sqrt(-ln(b e^{-z/2}))) in [0, 1), in which the inverse is
smooth from the far wings (b ~ e^{-z^2 / 2s^2}) to the money, so a uniform grid and bilinear
interpolation need no search. The table is built once at import and is read-only.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr

FloatArray = NDArray[np.float64]

_U_MAX = 4.0  # |ln(F/K)| beyond this is clipped: strikes over 50x away from the forward
_NU = 321
_NY = 2048
_S_MIN, _S_MAX, _NS = 1e-4, 16.0, 2000


def _y_of(ln_rel: FloatArray) -> FloatArray:
    return 1.0 / (1.0 + np.sqrt(np.maximum(-ln_rel, 0.0)))  # type: ignore[no-any-return]


def _build() -> FloatArray:
    u = np.linspace(0.0, _U_MAX, _NU)[:, None]
    ln_s = np.linspace(np.log(_S_MIN), np.log(_S_MAX), _NS)
    s = np.exp(ln_s)[None, :]
    with np.errstate(divide="ignore", invalid="ignore", under="ignore"):
        b = np.exp(-u / 2) * ndtr(-u / s + s / 2) - np.exp(u / 2) * ndtr(-u / s - s / 2)
        ln_rel = np.log(np.maximum(b, 1e-300)) + u / 2
    y = np.maximum.accumulate(_y_of(ln_rel), axis=1)  # rounding must not break monotonicity
    grid = np.linspace(0.0, 1.0, _NY)
    table = np.stack([np.interp(grid, row, ln_s) for row in y])
    table.flags.writeable = False
    return table


_LN_S = _build()


def total_volatility_guess(
    abs_log_moneyness: FloatArray, normalized_price: FloatArray
) -> FloatArray:
    """sigma * sqrt(T) whose out-of-the-money normalised price is about `normalized_price`."""
    fu = np.minimum(abs_log_moneyness, _U_MAX) * ((_NU - 1) / _U_MAX)
    i = np.minimum(fu.astype(np.intp), _NU - 2)
    wu = fu - i
    with np.errstate(divide="ignore"):
        ln_rel = np.log(normalized_price) + 0.5 * abs_log_moneyness
    fy = _y_of(ln_rel) * (_NY - 1)
    j = np.minimum(fy.astype(np.intp), _NY - 2)
    wy = fy - j
    flat = _LN_S.ravel()
    base = i * _NY + j
    top = flat[base] + wy * (flat[base + 1] - flat[base])
    bottom = flat[base + _NY] + wy * (flat[base + _NY + 1] - flat[base + _NY])
    return np.exp(top + wu * (bottom - top))  # type: ignore[no-any-return]
