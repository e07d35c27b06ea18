"""A starting point for the implied volatility solver, accurate to about 1e-4 of the price,
so a single Halley step almost always reaches 1e-12.

It interpolates a fixed table of the inverse of the normalised out-of-the-money Black price
b(z, s) = e^{z/2} N(z/s + s/2) - e^{-z/2} N(z/s - s/2), z = -|ln(F/K)| <= 0, s = sigma sqrt(T).
Prices are indexed by y = 1 / (1 + sqrt(-ln(b e^{-z/2}))) in [0, 1), in which the inverse is
smooth from the far wings (b ~ e^{-z^2 / 2s^2}) to the money; moneyness by sqrt(|z|), which puts
most rows near the money, where short-dated contracts make the inverse change fastest. Both
grids are uniform, so bilinear interpolation needs no search. The table holds s itself (not
ln s, which would cost an exp per contract for no accuracy the Halley step needs). It is built
once at import and is read-only.
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
_U_SCALE = (_NU - 1) / float(np.sqrt(_U_MAX))


def _y_of(ln_rel: FloatArray) -> FloatArray:
    return 1.0 / (1.0 + np.sqrt(np.maximum(-ln_rel, 0.0)))  # type: ignore[no-any-return]


def _build() -> FloatArray:
    u = (np.linspace(0.0, 1.0, _NU) ** 2 * _U_MAX)[:, None]
    ln_s = np.linspace(np.log(_S_MIN), np.log(_S_MAX), _NS)
    s = np.exp(ln_s)[None, :]
    with np.errstate(divide="ignore", invalid="ignore", under="ignore"):
        b = np.exp(-u / 2) * ndtr(-u / s + s / 2) - np.exp(u / 2) * ndtr(-u / s - s / 2)
        ln_rel = np.log(np.maximum(b, 1e-300)) + u / 2
    y = np.maximum.accumulate(_y_of(ln_rel), axis=1)  # rounding must not break monotonicity
    grid = np.linspace(0.0, 1.0, _NY)
    table = np.exp(np.stack([np.interp(grid, row, ln_s) for row in y]))
    table.flags.writeable = False
    return table


_S = _build()
_FLAT = _S.ravel()
# The four corners of cell (i, j) are _FLAT[c], _FLAT[c + 1], _FLAT[c + _NY], _FLAT[c + _NY + 1]
# with c = i * _NY + j: gathering from shifted views saves adding offsets to the indices.
_RIGHT, _DOWN, _DOWN_RIGHT = _FLAT[1:], _FLAT[_NY:], _FLAT[_NY + 1 :]


def total_volatility_guess(
    abs_log_moneyness: FloatArray, log_normalized_price: FloatArray
) -> FloatArray:
    """sigma * sqrt(T) whose out-of-the-money normalised price is about
    exp(`log_normalized_price`) (the solver needs that logarithm too, so it passes it in)."""
    fu = np.minimum(abs_log_moneyness, _U_MAX)
    np.sqrt(fu, out=fu)
    fu *= _U_SCALE
    cell = fu.astype(np.intp)
    np.minimum(cell, _NU - 2, out=cell)
    fu -= cell  # the weight of the next row
    # y = 1 / (1 + sqrt(-ln(b e^{-z/2}))), scaled to the grid.
    fy = 0.5 * abs_log_moneyness
    fy += log_normalized_price
    np.negative(fy, out=fy)
    np.maximum(fy, 0.0, out=fy)
    np.sqrt(fy, out=fy)
    fy += 1.0
    np.divide(_NY - 1, fy, out=fy)
    j = fy.astype(np.intp)
    np.minimum(j, _NY - 2, out=j)
    fy -= j
    cell *= _NY
    cell += j
    top = _FLAT[cell]
    right = _RIGHT[cell]
    right -= top
    right *= fy
    top += right
    bottom = _DOWN[cell]
    right = _DOWN_RIGHT[cell]
    right -= bottom
    right *= fy
    bottom += right
    bottom -= top
    bottom *= fu
    top += bottom
    return top
