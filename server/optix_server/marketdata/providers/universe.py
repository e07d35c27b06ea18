"""The simulated universe's instruments and the stable seeding every simulated number uses."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from optix_server.marketdata.models import InstrumentType


def stable_seed(*parts: object) -> int:
    """A 64-bit seed from arbitrary parts, stable across processes (unlike hash())."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


@dataclass(frozen=True, slots=True)
class SimulatedInstrument:
    """One symbol of the simulated universe."""

    symbol: str
    initial_price: float
    volatility: float
    drift: float = 0.0
    instrument_type: InstrumentType = InstrumentType.EQUITY
