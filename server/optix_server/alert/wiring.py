"""Wires the alert slice: storage, the market data stub, the engine and monitor, the event
streams, limits and the secret box."""

from __future__ import annotations

from collections.abc import Callable

from optix.alert.v1 import alert_service_pb2, alert_service_pb2_grpc
from optix.marketdata.v1 import marketdata_service_pb2_grpc, quote_pb2
from optix.user.v1 import user_service_pb2_grpc
from optix_server.alert.config import AlertSettings
from optix_server.alert.engine import AlertIndex
from optix_server.alert.event_service import AlertEventService
from optix_server.alert.events import EventRepository
from optix_server.alert.monitor import AlertMonitor, MonitorTiming
from optix_server.alert.quote_feed import QuoteFeed
from optix_server.alert.repository import AlertRepository
from optix_server.alert.service import AlertService
from optix_server.alert.servicer import AlertServicer
from optix_server.alert.user_webhooks import UserWebhooks, UserWebhookSettings
from optix_server.alert.webhooks.outbox import WebhookOutbox
from optix_server.alert.webhooks.sender import WebhookSender
from optix_server.common.exchange_calendar import us_options_calendar
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
    page_key = deps.tokens.keyring.derived_secret("optix page tokens v1")
    alerts = AlertRepository(deps.database)
    events = EventRepository(deps.database, delivery_window=settings.webhook.max_age)
    secrets = SecretBox(derive_key(key, "optix alert webhook secret v1"))
    sender = WebhookSender(deps.database, secrets, settings, deps.clock)
    # Alerts without a URL of their own deliver to their user's default webhook.
    user_webhooks = UserWebhooks(
        lambda: deps.clients.stub("user", user_service_pb2_grpc.UserServiceStub, caller=NAME),
        secrets,
        UserWebhookSettings.from_env(deps.settings.env),
    )
    event_service = AlertEventService(
        events, deps.pubsub, deps.lifecycle, PageTokens(page_key, "alert events")
    )

    def quote_feed(on_quote: Callable[[quote_pb2.Quote], None]) -> QuoteFeed:
        return QuoteFeed(deps.pubsub, on_quote)

    calendar = us_options_calendar()
    monitor = AlertMonitor(
        AlertIndex(calendar=calendar),
        alerts,
        events,
        event_service,
        deps.pubsub,
        deps.clock,
        quote_feed,
        timing=MonitorTiming(retention=settings.event_retention),
        webhook_for=user_webhooks.webhook_for,
        on_event=sender.notify,
        pruners=[WebhookOutbox(deps.database).prune],
        calendar=calendar,
    )
    service = AlertService(
        repository=alerts,
        market=market,
        settings=settings,
        clock=deps.clock,
        page_tokens=PageTokens(page_key, "alerts"),
        secrets=secrets,
        changes=monitor.announce,
    )
    servicer = AlertServicer(service, event_service)

    async def on_start() -> None:
        """Deliver pending webhooks (from before a restart too), then start evaluating."""
        sender.start()
        await monitor.start()

    async def on_stop() -> None:
        """Stop evaluating, then let in-flight deliveries finish."""
        await monitor.stop()
        await sender.stop()

    return ServiceModule(
        name=NAME,
        full_name=FULL_NAME,
        register=lambda server: alert_service_pb2_grpc.add_AlertServiceServicer_to_server(
            servicer, server
        ),
        on_start=on_start,
        on_stop=on_stop,
        extra={
            "service": service,
            "monitor": monitor,
            "events": event_service,
            "event_repository": events,
            "webhook_sender": sender,
            "user_webhooks": user_webhooks,
        },
    )
