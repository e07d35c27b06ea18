"""Builds the connector of every provider this server knows, from settings."""

from __future__ import annotations

import httpx

from optix_server.brokerage.config import ConnectorSettings
from optix_server.brokerage.connectors.base import BrokerConnector
from optix_server.brokerage.connectors.paper import PaperConnector
from optix_server.brokerage.connectors.schwab import SchwabConnector
from optix_server.infra.auth.clock import Clock
from optix_server.infra.request_rate import RequestLimiter


def build_connectors(
    settings: ConnectorSettings,
    clock: Clock,
    *,
    schwab_limiter: RequestLimiter | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, BrokerConnector]:
    """Provider id -> connector, ordered by id. Every provider is present even when disabled
    (`provider.enabled` False), so existing connections keep refreshing and syncing."""
    connectors: dict[str, BrokerConnector] = {
        "paper": PaperConnector(clock, enabled=settings.paper_enabled),
        "schwab": SchwabConnector(
            settings.schwab, clock, limiter=schwab_limiter, transport=transport
        ),
    }
    return dict(sorted(connectors.items()))
