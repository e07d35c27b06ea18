"""Black-Scholes-Merton pricing, Greeks and implied volatility over numpy arrays, computed by
compiled per-contract kernels (see bsm_kernels.py and iv_kernels.py for why)."""

from __future__ import annotations

from optix_server.marketdata.pricing.bsm import GreeksArrays, bsm_greeks, bsm_price
from optix_server.marketdata.pricing.chain import ChainAnalytics, analyze_chain
from optix_server.marketdata.pricing.implied_vol import ImpliedVolResult, implied_volatility
from optix_server.marketdata.pricing.status import IVStatus
from optix_server.marketdata.pricing.warmup import warm_up

__all__ = [
    "ChainAnalytics",
    "GreeksArrays",
    "IVStatus",
    "ImpliedVolResult",
    "analyze_chain",
    "bsm_greeks",
    "bsm_price",
    "implied_volatility",
    "warm_up",
]
