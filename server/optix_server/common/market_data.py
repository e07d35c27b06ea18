"""What other slices (watchlist, alert) ask of market data, through the market data service's
stub (in this process or at OPTIX_MARKETDATA_ADDRESS), never its modules."""

from __future__ import annotations

import asyncio
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
        self._in_flight: dict[tuple[str, ...], asyncio.Future[Mapping[str, quote_pb2.Quote]]] = {}

    async def _batch(
        self, symbols: Sequence[str], budget_s: float
    ) -> list[marketdata_service_pb2.BatchGetQuotesResponse]:
        if self._stub is None:
            self._stub = self._make_stub()
        loop = asyncio.get_running_loop()
        # One budget for all the chunks a long list needs, not one each.
        deadline = loop.time() + budget_s
        replies = []
        for start in range(0, len(symbols), BATCH_LIMIT):
            request = marketdata_service_pb2.BatchGetQuotesRequest(
                symbols=symbols[start : start + BATCH_LIMIT]
            )
            remaining = max(0.0, deadline - loop.time())
            try:
                replies.append(await self._stub.BatchGetQuotes(request, timeout=remaining))
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
        """See MarketData. Callers asking for the same symbols while such a call is in flight
        share its answer (no staler than that call), so a popular list read by many at once
        costs market data one call, not one per reader."""
        if not symbols:
            return {}
        key = tuple(symbols)
        shared = self._in_flight.get(key)
        if shared is None:
            shared = asyncio.ensure_future(self._fetch_quotes(key, budget_s))
            self._in_flight[key] = shared
            shared.add_done_callback(lambda _: self._in_flight.pop(key, None))
        # shield: one reader giving up (its call cancelled) must not cancel the others' fetch.
        return await asyncio.shield(shared)

    async def _fetch_quotes(
        self, symbols: Sequence[str], budget_s: float
    ) -> Mapping[str, quote_pb2.Quote]:
        return {q.symbol: q for reply in await self._batch(symbols, budget_s) for q in reply.quotes}
