"""Brokerage test harness: a real server hosting user + marketdata + brokerage on port 0 per
database, its Schwab connector pointed at the stand-in, the background sync worker off (tests
run syncs by awaiting the worker), fresh users signed in through the SDK."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx
from google.protobuf.descriptor import MethodDescriptor

from optix.brokerage.v1 import brokerage_service_pb2 as pb
from optix.brokerage.v1 import connection_pb2
from optix_client.client import OptixClient
from optix_client.config import ClientOptions
from optix_server.brokerage.repository import BrokerageRepository
from optix_server.brokerage.service import BrokerageService
from optix_server.brokerage.sync import SyncWorker
from tests.support.backends import fresh_database_url
from tests.support.schwab_standin import REDIRECT_URI, StandIn
from tests.support.server import RunningServer, make_settings, running_server

if TYPE_CHECKING:
    from optix.brokerage.v1.brokerage_service_pb2_grpc import BrokerageServiceAsyncStub

PASSWORD = "correct horse battery staple 42"
SERVICE = pb.DESCRIPTOR.services_by_name["BrokerageService"]
METHODS: tuple[MethodDescriptor, ...] = tuple(SERVICE.methods)
SERVICES = ("user", "marketdata", "brokerage")
OTHER_REDIRECT = "https://app.example.com/brokerage/callback"


def stack_env(standin: StandIn, **extra: str) -> dict[str, str]:
    """OPTIX_* variables of a brokerage test server using `standin` as Schwab."""
    return {
        "OPTIX_USER_REGISTRATIONS_PER_ADDRESS": "1000000",
        # Frozen prices: quotes and chains agree between calls.
        "OPTIX_MARKETDATA_TICK_RATE": "0.001",
        "OPTIX_BROKERAGE_SYNC_WORKER": "false",
        "OPTIX_BROKERAGE_MIN_SYNC_INTERVAL_SECONDS": "0",
        "OPTIX_BROKERAGE_TOKEN_KEYS": "k1:" + "a" * 44,
        "OPTIX_BROKERAGE_SCHWAB_CLIENT_ID": standin.client_id,
        "OPTIX_BROKERAGE_SCHWAB_CLIENT_SECRET": standin.client_secret,
        "OPTIX_BROKERAGE_SCHWAB_REDIRECT_URIS": f"{REDIRECT_URI},{OTHER_REDIRECT}",
        "OPTIX_BROKERAGE_SCHWAB_OAUTH_URL": standin.oauth_url,
        "OPTIX_BROKERAGE_SCHWAB_TRADER_URL": standin.trader_url,
        "OPTIX_BROKERAGE_SCHWAB_MAX_ATTEMPTS": "2",
        # The per-app budget is tested with the connector; here it would only slow the run.
        "OPTIX_BROKERAGE_SCHWAB_REQUESTS_PER_MINUTE": "100000",
        **extra,
    }


@dataclass
class User:
    """A registered user and their signed-in SDK client."""

    client: OptixClient
    user_id: str

    @property
    def brokerage(self) -> BrokerageServiceAsyncStub:
        """The user's BrokerageService stub."""
        return self.client.brokerage

    async def connect_paper(self) -> connection_pb2.Connection:
        """Connect the paper broker in one Start + Complete."""
        started = await self.brokerage.StartConnection(
            pb.StartConnectionRequest(parent="users/me", provider="providers/paper")
        )
        assert started.authorize_url == ""
        done = await self.brokerage.CompleteConnection(
            pb.CompleteConnectionRequest(parent="users/me", state=started.state)
        )
        return done.connection

    async def schwab_code(self, **start: Any) -> tuple[str, str]:
        """StartConnection for Schwab and the browser's trip to the stand-in: (code, state)."""
        started = await self.brokerage.StartConnection(
            pb.StartConnectionRequest(parent="users/me", provider="providers/schwab", **start)
        )
        async with httpx.AsyncClient() as browser:
            answer = await browser.get(started.authorize_url)
        assert answer.status_code == 302, answer.text
        query = parse_qs(urlsplit(answer.headers["Location"]).query)
        assert query["state"] == [started.state]
        return query["code"][0], started.state

    async def connect_schwab(self, **start: Any) -> connection_pb2.Connection:
        """The whole OAuth dance against the stand-in."""
        code, state = await self.schwab_code(**start)
        done = await self.brokerage.CompleteConnection(
            pb.CompleteConnectionRequest(parent="users/me", code=code, state=state)
        )
        return done.connection

    async def connection(self, name: str) -> connection_pb2.Connection:
        """GetConnection."""
        return (await self.brokerage.GetConnection(pb.GetConnectionRequest(name=name))).connection


@dataclass
class Stack:
    """A running server with the brokerage slice, the stand-in, and a test's clients."""

    running: RunningServer
    kind: str
    standin: StandIn
    clients: list[OptixClient] = field(default_factory=list)

    def fork(self) -> Stack:
        """The same server with a separate set of clients (one per test)."""
        return Stack(self.running, self.kind, self.standin)

    def _extra(self, key: str) -> Any:
        for module in self.running.server.modules:
            if module.name == "brokerage":
                return module.extra[key]
        raise AssertionError("no brokerage module")

    @property
    def worker(self) -> SyncWorker:
        """The server's sync worker (its loop is off: tests call run_due)."""
        worker: SyncWorker = self._extra("worker")
        return worker

    @property
    def service(self) -> BrokerageService:
        """The server's domain service."""
        service: BrokerageService = self._extra("service")
        return service

    @property
    def repository(self) -> BrokerageRepository:
        """The server's repository."""
        repository: BrokerageRepository = self._extra("repository")
        return repository

    async def user(self, *, retries: bool = True) -> User:
        """A freshly registered, signed-in user (`retries` False: a client that does not retry
        UNAVAILABLE, to see the code a call answered)."""
        options = (
            ClientOptions()
            if retries
            else ClientOptions(extra_channel_options=(("grpc.enable_retries", 0),))
        )
        client = OptixClient(self.running.address, options=options)
        self.clients.append(client)
        reply = await client.register(f"broker-{uuid.uuid4().hex}@example.com", PASSWORD)
        return User(client, reply.user.name.removeprefix("users/"))

    async def close(self) -> None:
        """Close every client this stack opened."""
        clients, self.clients = self.clients, []
        await asyncio.gather(*(client.close() for client in clients))


@asynccontextmanager
async def brokerage_stack(
    kind: str, tmp_path: Path, standin: StandIn, **env: str
) -> AsyncIterator[Stack]:
    """A fresh `kind` database and a server hosting user, market data and brokerage on it."""
    async with fresh_database_url(kind, tmp_path) as url:
        settings = make_settings(url, tmp_path, services=SERVICES, env=stack_env(standin, **env))
        async with running_server(settings) as running:
            stack = Stack(running, kind, standin)
            try:
                yield stack
            finally:
                await stack.close()
