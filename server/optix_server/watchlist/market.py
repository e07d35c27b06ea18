"""What the watchlist slice asks of market data, through the market data service's generated
stub (in this process or at OPTIX_MARKETDATA_ADDRESS), never its modules."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol

import grpc

from optix.marketdata.v1 import marketdata_service_pb2, quote_pb2
from optix_server.infra import errors

if TYPE_CHECKING:
    from optix.marketdata.v1.marketdata_service_pb2_grpc import MarketDataServiceAsyncStub

# BatchGetQuotes takes at most this many symbols per call.
BATCH_LIMIT = 500
RETRY_AFTER = timedelta(seconds=1)


class MarketData(Protocol):
    """Symbol existence and quotes, each call bounded by `budget_s` seconds (the caller's
    remaining time)."""

    async def unknown_symbols(self, symbols: Sequence[str], budget_s: float) -> list[str]:
        """The symbols no quote exists for; UNAVAILABLE (Unavailable) when market data is not
        reachable in time."""
        ...

    async def quotes(
        self, symbols: Sequence[str], budget_s: float
    ) -> Mapping[str, quote_pb2.Quote]:
        """The latest quote per symbol that has one; Unavailable as above."""
        ...


class MarketDataClient:
    """MarketData over the market data service's BatchGetQuotes."""

    def __init__(self, stub: Callable[[], MarketDataServiceAsyncStub]) -> None:
        # Made on first use: its channel belongs to the serving event loop.
        self._make_stub = stub
        self._stub: MarketDataServiceAsyncStub | None = None

    async def _batch(
        self, symbols: Sequence[str], budget_s: float
    ) -> list[marketdata_service_pb2.BatchGetQuotesResponse]:
        if self._stub is None:
            self._stub = self._make_stub()
        replies = []
        for start in range(0, len(symbols), BATCH_LIMIT):
            request = marketdata_service_pb2.BatchGetQuotesRequest(
                symbols=symbols[start : start + BATCH_LIMIT]
            )
            try:
                replies.append(await self._stub.BatchGetQuotes(request, timeout=budget_s))
            except grpc.aio.AioRpcError:
                # Down, slow or refusing: to the caller it is one thing, worth a retry.
                raise errors.Unavailable(
                    "market data is unavailable; retry shortly",
                    retry_after=RETRY_AFTER,
                    reason="MARKETDATA_UNAVAILABLE",
                ) from None
        return replies

    async def unknown_symbols(self, symbols: Sequence[str], budget_s: float) -> list[str]:
        """See MarketData."""
        if not symbols:
            return []
        return [s for reply in await self._batch(symbols, budget_s) for s in reply.missing_symbols]

    async def quotes(
        self, symbols: Sequence[str], budget_s: float
    ) -> Mapping[str, quote_pb2.Quote]:
        """See MarketData."""
        if not symbols:
            return {}
        return {q.symbol: q for reply in await self._batch(symbols, budget_s) for q in reply.quotes}
