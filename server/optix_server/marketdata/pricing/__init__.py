"""Vectorised Black-Scholes-Merton pricing, Greeks and implied volatility."""

from __future__ import annotations

from optix_server.marketdata.pricing.bsm import GreeksArrays, bsm_greeks, bsm_price
from optix_server.marketdata.pricing.chain import ChainAnalytics, analyze_chain
from optix_server.marketdata.pricing.implied_vol import (
    ImpliedVolResult,
    IVStatus,
    implied_volatility,
)

__all__ = [
    "ChainAnalytics",
    "GreeksArrays",
    "IVStatus",
    "ImpliedVolResult",
    "analyze_chain",
    "bsm_greeks",
    "bsm_price",
    "implied_volatility",
]
