"""Wires the marketdata slice: provider, cache-backed service, stream hub, feed owner."""

from __future__ import annotations

import asyncio

from optix.marketdata.v1 import marketdata_service_pb2 as pb
from optix_server.infra.module import Dependencies, ServiceModule
from optix_server.infra.registration import register_service
from optix_server.marketdata.config import MarketDataSettings
from optix_server.marketdata.feed import FeedPublisher
from optix_server.marketdata.pricing import warm_up
from optix_server.marketdata.providers.factory import create_provider
from optix_server.marketdata.quote_analytics import QuoteAnalyst
from optix_server.marketdata.service import MarketDataService
from optix_server.marketdata.servicer import MarketDataServicer
from optix_server.marketdata.streaming import QuoteHub

SERVICE = pb.DESCRIPTOR.services_by_name["MarketDataService"]
FULL_NAME = SERVICE.full_name


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
        observe_lag=deps.metrics.quote_fanout_lag.observe,
    )
    deps.metrics.count_conflations(lambda: hub.conflated)
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
    if publisher is not None:
        # Read at scrape time: always what the feed owner election decided last.
        deps.metrics.feed_owner.set_function(lambda: 1.0 if publisher.owns_feed else 0.0)
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
        # StreamQuotes yields pre-encoded bytes: each tick is serialised once, not per client;
        # GetOptionsChain answers bytes encoded once per underlying per market update.
        register=lambda server: register_service(
            server, servicer, SERVICE, pre_encoded={"StreamQuotes", "GetOptionsChain"}
        ),
        on_start=on_start,
        on_stop=on_stop,
        extra={"service": service, "hub": hub, "publisher": publisher, "provider": provider},
    )
