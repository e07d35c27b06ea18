"""One underlying's chain at one market update, priced and encoded once, and the slice of it
a request selected."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from optix_server.marketdata.chain_wire import EncodedChain, encode_chain
from optix_server.marketdata.models import OptionsChain, RawChain
from optix_server.marketdata.priced_chain import ChainPricer, Index, PricedChain, price_chain


@dataclass(frozen=True, slots=True)
class BuildTimings:
    """Where a shared chain's one-off cost went, in seconds."""

    fetch: float
    assembly: float
    pricing: float
    encoding: float


@dataclass(frozen=True, slots=True)
class SharedChain:
    """A priced chain and its encoded response pieces, shared by one update's requests."""

    priced: PricedChain
    encoded: EncodedChain
    timings: BuildTimings

    @property
    def nbytes(self) -> int:
        """Approximate memory held."""
        return self.priced.nbytes + self.encoded.nbytes


@dataclass(frozen=True, slots=True)
class ChainSelection:
    """The contracts of a shared chain one request selected."""

    shared: SharedChain
    index: Index

    def response_bytes(self) -> bytes:
        """The encoded GetOptionsChainResponse."""
        return self.shared.encoded.response(self.index)

    def chain(self) -> OptionsChain:
        """The selection as domain values."""
        return self.shared.priced.chain(self.index)


def build_shared_chain(
    raw: RawChain,
    rate: float,
    dividend_yield: float,
    pricer: ChainPricer,
    previous: SharedChain | None,
    fetch_seconds: float,
    listed: Callable[[date, datetime], bool],
) -> SharedChain:
    """Price and encode the contracts of `raw` whose expiration is still `listed` (reusing
    what the previous update encoded that still holds)."""
    started = time.perf_counter()
    priced = price_chain(raw, rate, dividend_yield, pricer, listed)
    priced_at = time.perf_counter()
    encoded = encode_chain(priced, previous.encoded if previous is not None else None)
    encoded_at = time.perf_counter()
    return SharedChain(
        priced,
        encoded,
        BuildTimings(
            fetch=fetch_seconds,
            assembly=priced_at - started - priced.kernel_seconds,
            pricing=priced.kernel_seconds,
            encoding=encoded_at - priced_at,
        ),
    )
