"""The MarketDataService servicer: proto in, domain call, proto out. Nothing else."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import grpc

from optix.common.v1 import stream_pb2
from optix.marketdata.v1 import marketdata_service_pb2 as pb
from optix_server.common.proto_fields import duration_seconds, optional_timestamp
from optix_server.infra.errors import ViolationCollector
from optix_server.marketdata.convert import (
    expiration_to_proto,
    history_to_proto,
    instrument_to_proto,
    interval_from_proto,
    interval_to_proto,
    quote_to_proto,
    side_from_proto,
    source_to_proto,
    timestamp,
)
from optix_server.marketdata.service import MarketDataService
from optix_server.marketdata.streaming import QuoteHub
from optix_server.marketdata.validation import optional_date

Context = grpc.aio.ServicerContext[Any, Any]


class MarketDataServicer:
    """Implements optix.marketdata.v1.MarketDataService over MarketDataService and QuoteHub."""

    def __init__(self, service: MarketDataService, hub: QuoteHub) -> None:
        self._service = service
        self._hub = hub

    async def GetQuote(self, request: pb.GetQuoteRequest, context: Context) -> pb.GetQuoteResponse:
        """Latest quote for one symbol."""
        quote = await self._service.get_quote(request.symbol)
        return pb.GetQuoteResponse(quote=quote_to_proto(quote))

    async def BatchGetQuotes(
        self, request: pb.BatchGetQuotesRequest, context: Context
    ) -> pb.BatchGetQuotesResponse:
        """Latest quotes for several symbols, listing the missing ones."""
        quotes, missing = await self._service.batch_get_quotes(list(request.symbols))
        return pb.BatchGetQuotesResponse(
            quotes=[quote_to_proto(q) for q in quotes], missing_symbols=missing
        )

    async def ListExpirations(
        self, request: pb.ListExpirationsRequest, context: Context
    ) -> pb.ListExpirationsResponse:
        """An underlying's expirations, soonest first."""
        expirations, today = await self._service.list_expirations(request.underlying)
        return pb.ListExpirationsResponse(
            expirations=[expiration_to_proto(e, today) for e in expirations]
        )

    async def GetOptionsChain(self, request: pb.GetOptionsChainRequest, context: Context) -> bytes:
        """A priced options chain, as GetOptionsChainResponse bytes encoded once per market
        update (registered pre-encoded: the serializer passes them through)."""
        dates = ViolationCollector()
        s, e = request.expiration_start, request.expiration_end
        has_start = request.HasField("expiration_start")
        has_end = request.HasField("expiration_end")
        start = optional_date(dates, "expiration_start", s.year, s.month, s.day, has_start)
        end = optional_date(dates, "expiration_end", e.year, e.month, e.day, has_end)
        chain = await self._service.get_options_chain(
            request.underlying,
            expiration_start=start,
            expiration_end=end,
            strike_min=request.strike_min,
            strike_max=request.strike_max,
            strike_count=request.strike_count,
            side=side_from_proto(request.side),
            invalid_dates=[(v.field, v.description) for v in dates.violations],
        )
        return chain.response_bytes()

    async def GetPriceHistory(
        self, request: pb.GetPriceHistoryRequest, context: Context
    ) -> pb.GetPriceHistoryResponse:
        """OHLCV bars."""
        times = ViolationCollector()
        has_start, has_end = request.HasField("start_time"), request.HasField("end_time")
        start = optional_timestamp(times, "start_time", request.start_time, has_start)
        end = optional_timestamp(times, "end_time", request.end_time, has_end)
        history = await self._service.get_price_history(
            request.symbol,
            interval_from_proto(request.interval),
            start,
            end,
            invalid_times=[(v.field, v.description) for v in times.violations],
        )
        return pb.GetPriceHistoryResponse(
            symbol=history.symbol,
            interval=interval_to_proto(history.interval),
            bars=history_to_proto(history),
            source=source_to_proto(history.source),
            instrument_type=instrument_to_proto(history.instrument_type),
        )

    async def StreamQuotes(self, request: pb.StreamQuotesRequest, context: Context) -> None:
        """Batches of the newest quotes, heartbeats when idle, UNAVAILABLE on shutdown."""
        heartbeat = (
            duration_seconds(request.heartbeat_interval)
            if request.HasField("heartbeat_interval")
            else None
        )
        symbols, heartbeat_seconds = self._service.validate_stream(list(request.symbols), heartbeat)
        async with self._hub.subscribe(symbols, heartbeat_seconds) as subscription:
            # Written, not yielded: a coroutine passes through the interceptors once, where a
            # generator would cost a hop per interceptor for every message of every stream.
            while True:
                message = await subscription.next_message()
                if message is not None:
                    # Quotes arrive encoded; the stream's serializer passes these bytes through.
                    await context.write(message)
                else:
                    now = timestamp(datetime.now(UTC))
                    await context.write(
                        pb.StreamQuotesResponse(heartbeat=stream_pb2.Heartbeat(server_time=now))
                    )
