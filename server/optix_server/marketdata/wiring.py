"""Wires the marketdata slice: provider, cache-backed service, stream hub, feed owner."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from optix.marketdata.v1 import marketdata_service_pb2 as pb
from optix_server.infra.module import Dependencies, ServiceModule
from optix_server.marketdata.config import MarketDataSettings
from optix_server.marketdata.feed import FeedPublisher
from optix_server.marketdata.pricing import warm_up
from optix_server.marketdata.providers.factory import create_provider
from optix_server.marketdata.quote_analytics import QuoteAnalyst
from optix_server.marketdata.service import MarketDataService
from optix_server.marketdata.servicer import MarketDataServicer
from optix_server.marketdata.streaming import QuoteHub
from optix_server.marketdata.wire import serialize_stream_response

FULL_NAME = "optix.marketdata.v1.MarketDataService"


def register_servicer(servicer: MarketDataServicer, server: grpc.aio.Server) -> None:
    """Add the servicer like the generated helper does, except that StreamQuotes accepts
    pre-encoded response bytes (each tick is serialised once, not once per client)."""
    unary: dict[str, tuple[Any, Any]] = {
        "GetQuote": (pb.GetQuoteRequest, pb.GetQuoteResponse),
        "BatchGetQuotes": (pb.BatchGetQuotesRequest, pb.BatchGetQuotesResponse),
        "ListExpirations": (pb.ListExpirationsRequest, pb.ListExpirationsResponse),
        "GetOptionsChain": (pb.GetOptionsChainRequest, pb.GetOptionsChainResponse),
        "GetPriceHistory": (pb.GetPriceHistoryRequest, pb.GetPriceHistoryResponse),
    }
    handlers: dict[str, grpc.RpcMethodHandler[object, object]] = {
        name: grpc.unary_unary_rpc_method_handler(
            getattr(servicer, name),
            request_deserializer=request.FromString,
            response_serializer=response.SerializeToString,
        )
        for name, (request, response) in unary.items()
    }
    handlers["StreamQuotes"] = grpc.unary_stream_rpc_method_handler(
        servicer.StreamQuotes,
        request_deserializer=pb.StreamQuotesRequest.FromString,
        response_serializer=serialize_stream_response,  # type: ignore[arg-type]
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(FULL_NAME, handlers),))
    server.add_registered_method_handlers(FULL_NAME, handlers)


def create_module(
    deps: Dependencies, *, settings: MarketDataSettings | None = None
) -> ServiceModule:
    """The marketdata ServiceModule; tests may inject settings."""
    settings = settings or MarketDataSettings.from_env(deps.settings.env)
    provider = create_provider(settings)
    service = MarketDataService(provider, deps.cache, settings)
    hub = QuoteHub(
        deps.pubsub,
        service.cached_quotes,
        deps.lifecycle.shutting_down,
        lease_seconds=settings.demand_lease_seconds,
    )
    publisher = (
        FeedPublisher(
            provider,
            deps.pubsub,
            deps.cache,
            lease_seconds=settings.demand_lease_seconds,
            cache_ttl=settings.quote_cache_ttl,
            owner_lease_seconds=settings.feed_owner_lease_seconds,
            analyst=QuoteAnalyst(settings),
        )
        if settings.feed_owner
        else None
    )
    servicer = MarketDataServicer(service, hub)

    async def on_start() -> None:
        """Compile the pricing kernels, open the provider, start the feed (when this process
        owns it), then the hub."""
        # Off the event loop: a cold compile takes seconds (later starts load numba's cache).
        await asyncio.to_thread(warm_up)
        await provider.start()
        if publisher is not None:
            await publisher.start()
        await hub.start()

    async def on_stop() -> None:
        """End streams (UNAVAILABLE), stop the feed, close the provider."""
        await hub.stop()
        if publisher is not None:
            await publisher.stop()
        await provider.close()

    return ServiceModule(
        name="marketdata",
        full_name=FULL_NAME,
        register=lambda server: register_servicer(servicer, server),
        on_start=on_start,
        on_stop=on_stop,
        extra={"service": service, "hub": hub, "publisher": publisher, "provider": provider},
    )
