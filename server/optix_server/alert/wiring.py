"""Wires the alert slice: storage, the market data stub, limits and the secret box."""

from __future__ import annotations

from optix.alert.v1 import alert_service_pb2, alert_service_pb2_grpc
from optix.marketdata.v1 import marketdata_service_pb2_grpc
from optix_server.alert.config import AlertSettings
from optix_server.alert.repository import AlertRepository
from optix_server.alert.service import AlertService
from optix_server.alert.servicer import AlertServicer
from optix_server.common.market_data import MarketDataClient
from optix_server.infra.aip.paging import PageTokens
from optix_server.infra.crypto import SecretBox, derive_key, load_or_create_pepper
from optix_server.infra.logging import get_logger
from optix_server.infra.module import Dependencies, ServiceModule

FULL_NAME = alert_service_pb2.DESCRIPTOR.services_by_name["AlertService"].full_name
NAME = "alert"

log = get_logger(__name__)


def create_module(deps: Dependencies, *, settings: AlertSettings | None = None) -> ServiceModule:
    """The alert ServiceModule; tests may inject settings."""
    settings = settings or AlertSettings.from_env(deps.settings.env)
    key = settings.secret_key
    if key is None:
        path = deps.settings.var_dir / "keys" / "alert-secrets"
        # Fine for one process; replicas must share one key, or webhook secrets stop opening.
        log.warning("OPTIX_ALERT_SECRET_KEY is not set; using the key file", path=str(path))
        key = load_or_create_pepper(path)
    market = MarketDataClient(
        lambda: deps.clients.stub(
            "marketdata", marketdata_service_pb2_grpc.MarketDataServiceStub, caller=NAME
        )
    )
    service = AlertService(
        repository=AlertRepository(deps.database),
        market=market,
        settings=settings,
        clock=deps.clock,
        page_tokens=PageTokens(
            deps.tokens.keyring.derived_secret("optix page tokens v1"), "alerts"
        ),
        secrets=SecretBox(derive_key(key, "optix alert webhook secret v1")),
    )
    servicer = AlertServicer(service)
    return ServiceModule(
        name=NAME,
        full_name=FULL_NAME,
        register=lambda server: alert_service_pb2_grpc.add_AlertServiceServicer_to_server(
            servicer, server
        ),
        extra={"service": service},
    )
