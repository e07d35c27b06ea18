"""Compiling the pricing kernels before the first request needs them."""

from __future__ import annotations

import numpy as np

from optix_server.marketdata.pricing.bsm import bsm_greeks, bsm_price
from optix_server.marketdata.pricing.chain import analyze_chain
from optix_server.marketdata.pricing.implied_vol import implied_volatility


def warm_up() -> None:
    """Compile (or load from numba's disk cache) every pricing kernel for the argument types
    requests use, so no request pays for it (~3.5 s the first time, ~0.3 s from the cache)."""
    one = np.ones(1)
    call = np.ones(1, dtype=np.bool_)
    bsm_price(1.0, one, one, 0.0, 0.0, one, call)
    bsm_greeks(1.0, one, one, 0.0, 0.0, one, call)
    implied_volatility(0.1, 1.0, one, one, 0.0, 0.0, call)
    analyze_chain(1.0, 0.0, 0.0, one, one, call, one * 0.05, one * 0.1, one * 0.1)
