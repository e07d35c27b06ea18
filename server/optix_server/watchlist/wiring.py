"""Wires the watchlist slice: storage, the market data stub and limits into a ServiceModule."""

from __future__ import annotations

from optix.marketdata.v1 import marketdata_service_pb2_grpc
from optix.watchlist.v1 import watchlist_service_pb2, watchlist_service_pb2_grpc
from optix_server.common.market_data import MarketDataClient
from optix_server.infra.aip.paging import PageTokens
from optix_server.infra.module import Dependencies, ServiceModule
from optix_server.watchlist.config import WatchlistSettings
from optix_server.watchlist.convert import WatchlistMessages
from optix_server.watchlist.repository import WatchlistRepository
from optix_server.watchlist.service import WatchlistService
from optix_server.watchlist.servicer import WatchlistServicer

FULL_NAME = watchlist_service_pb2.DESCRIPTOR.services_by_name["WatchlistService"].full_name
NAME = "watchlist"


def create_module(
    deps: Dependencies, *, settings: WatchlistSettings | None = None
) -> ServiceModule:
    """The watchlist ServiceModule; tests may inject limits."""
    settings = settings or WatchlistSettings.from_env(deps.settings.env)
    market = MarketDataClient(
        lambda: deps.clients.stub(
            "marketdata", marketdata_service_pb2_grpc.MarketDataServiceStub, caller=NAME
        )
    )
    service = WatchlistService(
        repository=WatchlistRepository(deps.database),
        market=market,
        settings=settings,
        clock=deps.clock,
        page_tokens=PageTokens(
            deps.tokens.keyring.derived_secret("optix page tokens v1"), "watchlists"
        ),
    )
    servicer = WatchlistServicer(service, WatchlistMessages())
    return ServiceModule(
        name=NAME,
        full_name=FULL_NAME,
        register=lambda server: watchlist_service_pb2_grpc.add_WatchlistServiceServicer_to_server(
            servicer, server
        ),
    )
