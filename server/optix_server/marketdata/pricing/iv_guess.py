"""A starting point for the implied volatility solver, accurate to about 1e-4 of the price,
so a single Halley step almost always reaches 1e-12.

A fixed table of the inverse of the normalised out-of-the-money Black price
b(z, s) = e^{z/2} N(z/s + s/2) - e^{-z/2} N(z/s - s/2), z = -|ln(F/K)| <= 0, s = sigma sqrt(T).
Rows are indexed by sqrt(|z|) (most rows near the money, where short-dated contracts make the
inverse change fastest), columns by y = 1 / (1 + sqrt(-ln(b e^{-z/2}))) in [0, 1), in which
the inverse is smooth from the far wings (b ~ e^{-z^2 / 2s^2}) to the money. Both grids are
uniform, so bilinear interpolation needs no search (iv_kernels._guess). The table holds s itself
(not ln s, which would cost an exp per contract for no accuracy the Halley step needs). It is
built once, on first use, and is read-only.
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr

FloatArray = NDArray[np.float64]

U_MAX = 4.0  # |ln(F/K)| beyond this is clipped: strikes over 50x away from the forward
NU = 321
NY = 2048
U_SCALE = (NU - 1) / float(np.sqrt(U_MAX))
_S_MIN, _S_MAX, _NS = 1e-4, 16.0, 2000


def _y_of(ln_rel: FloatArray) -> FloatArray:
    return 1.0 / (1.0 + np.sqrt(np.maximum(-ln_rel, 0.0)))  # type: ignore[no-any-return]


@functools.cache
def guess_table() -> FloatArray:
    """The (NU, NY) table of total volatilities s, built on first use (~0.15 s)."""
    u = (np.linspace(0.0, 1.0, NU) ** 2 * U_MAX)[:, None]
    ln_s = np.linspace(np.log(_S_MIN), np.log(_S_MAX), _NS)
    s = np.exp(ln_s)[None, :]
    with np.errstate(divide="ignore", invalid="ignore", under="ignore"):
        b = np.exp(-u / 2) * ndtr(-u / s + s / 2) - np.exp(u / 2) * ndtr(-u / s - s / 2)
        ln_rel = np.log(np.maximum(b, 1e-300)) + u / 2
    y = np.maximum.accumulate(_y_of(ln_rel), axis=1)  # rounding must not break monotonicity
    grid = np.linspace(0.0, 1.0, NY)
    table = np.ascontiguousarray(np.exp(np.stack([np.interp(grid, row, ln_s) for row in y])))
    table.flags.writeable = False
    return table
