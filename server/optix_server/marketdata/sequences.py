"""Quote sequences that keep growing across feed owners. A replica taking the feed over
(the owner stopped or vanished) starts its provider afresh, whose sequences may start lower
than the ones streams have already seen (a replay restarts at 1, simulated markets started at
different times differ), and the streams drop anything not newer than what they have. So each
owner records every symbol's newest sequence in the cache, and a new owner shifts its
provider's sequences to continue from the recorded ones: no duplicate, no step backwards."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from optix_server.infra.cache import Cache
from optix_server.marketdata.models import Quote

# How long a symbol's newest sequence is kept without ticks (a takeover after a longer silence
# may start lower; streams opened since then have no memory of the old sequences either).
SEQUENCE_TTL_SECONDS = 3600.0


def sequence_key(symbol: str) -> str:
    """Where a symbol's newest published sequence lives in the cache."""
    return f"marketdata:sequence:{symbol}"


class SequenceContinuity:
    """Shifts an owner's provider sequences past those of the owners before it."""

    def __init__(self, cache: Cache) -> None:
        self._cache = cache
        # Per symbol: what this owner adds to its provider's sequences (fixed once known).
        self._shift: dict[str, int] = {}

    def reset(self) -> None:
        """Forget the shifts (this replica lost the feed; a later takeover reads them anew)."""
        self._shift.clear()

    async def continued(self, quotes: Mapping[str, Quote]) -> dict[str, Quote]:
        """`quotes` with sequences continuing the recorded ones (one cache read for the
        symbols seen for the first time since this replica took the feed over)."""
        new = [symbol for symbol in quotes if symbol not in self._shift]
        if new:
            recorded = await self._cache.get_many([sequence_key(s) for s in new])
            for symbol, value in zip(new, recorded, strict=True):
                floor = int(value) if value else 0
                self._shift[symbol] = max(0, floor + 1 - quotes[symbol].sequence)
        return {
            symbol: dataclasses.replace(quote, sequence=quote.sequence + self._shift[symbol])
            if self._shift[symbol]
            else quote
            for symbol, quote in quotes.items()
        }

    @staticmethod
    def records(quotes: Mapping[str, Quote]) -> dict[str, bytes]:
        """The cache entries recording these quotes' sequences (written with the quotes)."""
        return {sequence_key(s): str(q.sequence).encode() for s, q in quotes.items()}
