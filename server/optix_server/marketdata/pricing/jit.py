"""The one way the pricing kernels are compiled."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba

F = TypeVar("F", bound=Callable[..., Any])


def compiled(fn: F) -> F:
    """`fn` compiled to machine code by numba on first call (cached on disk under
    __pycache__), callable without the GIL. Division follows IEEE (x/0 is inf or NaN, as in
    numpy), not Python's ZeroDivisionError; no fast-math, so results are reproducible IEEE
    doubles wherever the same operations run."""
    return cast(F, numba.njit(cache=True, nogil=True, error_model="numpy")(fn))
