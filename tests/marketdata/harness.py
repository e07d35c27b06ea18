"""A real server hosting the marketdata slice on port 0, and an authenticated stub for it."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from optix.marketdata.v1 import marketdata_service_pb2_grpc
from optix_server.infra.auth.config import AuthSettings
from optix_server.marketdata.config import MarketDataSettings
from optix_server.marketdata.service import MarketDataService
from optix_server.marketdata.streaming import QuoteHub
from optix_server.marketdata.wiring import create_module
from tests.support.server import RunningServer, make_settings, running_server

M = TypeVar("M", bound=Message)


@dataclass
class MarketDataHarness:
    """The running server, a stub, and the call metadata carrying a valid access token."""

    running: RunningServer
    channel: grpc.aio.Channel
    stub: marketdata_service_pb2_grpc.MarketDataServiceAsyncStub
    metadata: tuple[tuple[str, str], ...]

    @property
    def extra(self) -> dict[str, Any]:
        """The marketdata module's internals (service, hub, publisher, provider)."""
        module = next(m for m in self.running.server.modules if m.name == "marketdata")
        return module.extra

    @property
    def hub(self) -> QuoteHub:
        """The process's quote hub."""
        hub = self.extra["hub"]
        assert isinstance(hub, QuoteHub)
        return hub

    @property
    def service(self) -> MarketDataService:
        """The domain service."""
        service = self.extra["service"]
        assert isinstance(service, MarketDataService)
        return service


@asynccontextmanager
async def marketdata_server(
    tmp_path: Path,
    marketdata: MarketDataSettings | None = None,
    *,
    redis_url: str | None = None,
    redis_prefix: str = "optix:",
    auth: AuthSettings | None = None,
    token_ttl: timedelta = timedelta(minutes=30),
) -> AsyncIterator[MarketDataHarness]:
    """Start only the marketdata service (SQLite; Redis cache/pub-sub when a URL is given),
    with an access token living `token_ttl`."""
    settings = make_settings(
        f"sqlite+aiosqlite:///{(tmp_path / 'md.db').as_posix()}",
        tmp_path,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        services=["marketdata"],
        auth=auth or AuthSettings(),
    )
    hosted = marketdata or MarketDataSettings()
    async with running_server(
        settings, modules=lambda deps: [create_module(deps, settings=hosted)]
    ) as running:
        token = running.deps.tokens.issue_access_token(
            "user-1", session_id="session-1", ttl=token_ttl
        )
        async with running.channel() as channel:
            yield MarketDataHarness(
                running,
                channel,
                marketdata_service_pb2_grpc.MarketDataServiceStub(channel),
                (("authorization", f"Bearer {token.token}"),),
            )


def with_settings(base: MarketDataSettings, **changes: object) -> MarketDataSettings:
    """A copy of `base` with `changes`."""
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]
