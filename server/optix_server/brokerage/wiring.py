"""Wires the brokerage slice: storage, the connectors, the token vault, the market data stub,
the service and its sync worker into a ServiceModule."""

from __future__ import annotations

from collections.abc import Mapping

from optix.brokerage.v1 import brokerage_service_pb2
from optix.marketdata.v1 import marketdata_service_pb2_grpc
from optix_server.brokerage.config import BrokerageSettings
from optix_server.brokerage.connectors.base import BrokerConnector
from optix_server.brokerage.connectors.factory import build_connectors
from optix_server.brokerage.repository import BrokerageRepository
from optix_server.brokerage.service import BrokerageService
from optix_server.brokerage.servicer import BrokerageServicer
from optix_server.brokerage.snapshots import PortfolioSnapshots
from optix_server.brokerage.sync import SyncWorker
from optix_server.brokerage.tokens import TokenBox, build_token_box
from optix_server.brokerage.vault import TokenVault
from optix_server.common.market_data import MarketDataClient
from optix_server.infra.module import Dependencies, ServiceModule
from optix_server.infra.registration import register_service
from optix_server.infra.request_rate import SharedWindowLimiter
from optix_server.infra.settings import Settings

SERVICE = brokerage_service_pb2.DESCRIPTOR.services_by_name["BrokerageService"]
FULL_NAME = SERVICE.full_name
NAME = "brokerage"


def token_box(settings: Settings, brokerage: BrokerageSettings) -> TokenBox:
    """The box sealing provider tokens (configured keys, else the local key file)."""
    return build_token_box(
        brokerage.connectors.token_keys, settings.var_dir / "keys" / "brokerage-tokens"
    )


def create_module(
    deps: Dependencies,
    *,
    settings: BrokerageSettings | None = None,
    connectors: Mapping[str, BrokerConnector] | None = None,
) -> ServiceModule:
    """The brokerage ServiceModule; tests may inject settings and connectors."""
    settings = settings or BrokerageSettings.from_env(deps.settings.env)
    schwab = settings.connectors.schwab
    # One request budget per Schwab app, counted through the cache, so replicas sharing Redis
    # stay under it together (a per-process window would allow the rate once per replica).
    limiter = SharedWindowLimiter(
        deps.cache, f"brokerage:schwab:{schwab.client_id}", schwab.requests_per_minute
    )
    providers = connectors or build_connectors(
        settings.connectors, deps.clock, schwab_limiter=limiter
    )
    market = MarketDataClient(
        lambda: deps.clients.stub(
            "marketdata", marketdata_service_pb2_grpc.MarketDataServiceStub, caller=NAME
        )
    )
    repository = BrokerageRepository(deps.database)
    vault = TokenVault(token_box(deps.settings, settings))
    snapshots = PortfolioSnapshots(
        deps.pubsub,
        max_age_s=settings.portfolio_max_age.total_seconds(),
        max_bytes=settings.portfolio_cache_bytes,
    )
    worker = SyncWorker(
        repository,
        providers,
        vault,
        market,
        settings,
        deps.clock,
        deps.lifecycle,
        on_change=snapshots.changed,
    )
    service = BrokerageService(
        repository,
        providers,
        vault,
        market,
        settings,
        deps.clock,
        deps.tokens.keyring.derived_secret("optix page tokens v1"),
        wake_worker=worker.wake,
        on_change=snapshots.changed,
    )
    servicer = BrokerageServicer(service, snapshots)

    async def on_start() -> None:
        """Listen for portfolio changes, then start syncing (every replica runs a worker;
        leases keep them apart)."""
        await snapshots.start()
        if settings.worker_enabled:
            worker.start()

    async def on_stop() -> None:
        """Stop syncing and close the providers' HTTP clients."""
        await worker.stop()
        await snapshots.stop()
        for connector in providers.values():
            await connector.close()

    return ServiceModule(
        name=NAME,
        full_name=FULL_NAME,
        # GetPortfolio answers with snapshots encoded once.
        register=lambda server: register_service(
            server, servicer, SERVICE, pre_encoded={"GetPortfolio"}
        ),
        on_start=on_start,
        on_stop=on_stop,
        extra={
            "service": service,
            "worker": worker,
            "repository": repository,
            "snapshots": snapshots,
        },
    )
