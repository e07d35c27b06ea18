"""Alert test harness: a real server hosting user + marketdata + alert on port 0 per database,
fresh users signed in through the SDK, and request builders for any AlertService RPC."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from optix.alert.v1 import alert_event_pb2, alert_pb2, alert_service_pb2
from optix.marketdata.v1 import marketdata_service_pb2
from optix_client.client import OptixClient
from optix_server.alert.config import AlertSettings
from optix_server.alert.wiring import create_module
from optix_server.infra.auth.clock import Clock
from optix_server.infra.module import Dependencies, ServiceModule
from optix_server.services import factory_for
from tests.support.backends import fresh_database_url
from tests.support.server import RunningServer, make_settings, running_server

if TYPE_CHECKING:
    from optix.alert.v1.alert_service_pb2_grpc import AlertServiceAsyncStub

PASSWORD = "correct horse battery staple 42"
SERVICE = alert_service_pb2.DESCRIPTOR.services_by_name["AlertService"]
METHODS: tuple[MethodDescriptor, ...] = tuple(SERVICE.methods)
TEST_ENV = {
    "OPTIX_USER_REGISTRATIONS_PER_ADDRESS": "1000000",
    # Quick ticks: firings in these tests follow price moves.
    "OPTIX_MARKETDATA_TICK_RATE": "20",
}
SERVICES = ("user", "marketdata", "alert")

Alert = alert_pb2.Alert


def price_above(price: float = 1_000_000.0) -> alert_pb2.AlertCondition:
    """A price_above condition (by default one no simulated price reaches: it never fires)."""
    return alert_pb2.AlertCondition(price_above=alert_pb2.PriceThreshold(price=price))


@dataclass
class Account:
    """A registered user and their signed-in SDK client."""

    client: OptixClient
    user_id: str

    @property
    def alerts(self) -> AlertServiceAsyncStub:
        """The user's AlertService stub."""
        return self.client.alert

    @property
    def parent(self) -> str:
        """`users/{id}`."""
        return f"users/{self.user_id}"

    def name(self, alert_id: str, *, user: str | None = None) -> str:
        """`users/{user}/alerts/{alert_id}` (the account's own id by default)."""
        return f"users/{user or self.user_id}/alerts/{alert_id}"

    async def create(
        self,
        symbol: str = "AAPL",
        condition: alert_pb2.AlertCondition | None = None,
        *,
        request_id: str = "",
        **fields: Any,
    ) -> alert_service_pb2.CreateAlertResponse:
        """CreateAlert under `users/me`."""
        alert = Alert(symbol=symbol, condition=condition or price_above(), **fields)
        return await self.alerts.CreateAlert(
            alert_service_pb2.CreateAlertRequest(
                parent="users/me", alert=alert, request_id=request_id
            )
        )

    async def events(self, parent: str = "users/me/alerts/-") -> list[alert_event_pb2.AlertEvent]:
        """Every retained event (paging through), newest first."""
        result: list[alert_event_pb2.AlertEvent] = []
        token = ""
        while True:
            reply = await self.alerts.ListAlertEvents(
                alert_service_pb2.ListAlertEventsRequest(
                    parent=parent, page_size=1000, page_token=token
                )
            )
            result.extend(reply.events)
            token = reply.next_page_token
            if not token:
                return result

    async def list_all(self, **filters: Any) -> list[Alert]:
        """Every alert (paging through), newest first."""
        result: list[Alert] = []
        token = ""
        while True:
            reply = await self.alerts.ListAlerts(
                alert_service_pb2.ListAlertsRequest(
                    parent="users/me", page_size=100, page_token=token, **filters
                )
            )
            result.extend(reply.alerts)
            token = reply.next_page_token
            if not token:
                return result


@dataclass
class Stack:
    """A running server with the alert slice, and the SDK clients a test opened on it."""

    running: RunningServer
    kind: str
    clients: list[OptixClient] = field(default_factory=list)

    def fork(self) -> Stack:
        """The same server with a separate set of clients (one per test)."""
        return Stack(self.running, self.kind)

    async def account(self) -> Account:
        """A freshly registered, signed-in user."""
        client = OptixClient(self.running.address)
        self.clients.append(client)
        reply = await client.register(f"alert-{uuid.uuid4().hex}@example.com", PASSWORD)
        return Account(client, reply.user.name.removeprefix("users/"))

    async def option_symbol(self, account: Account, underlying: str = "AAPL") -> str:
        """A listed option contract the simulated market data quotes."""
        reply = await account.client.marketdata.GetOptionsChain(
            marketdata_service_pb2.GetOptionsChainRequest(underlying=underlying, strike_count=1)
        )
        return reply.chain.options[0].contract.symbol

    async def close(self) -> None:
        """Close every client this stack opened."""
        clients, self.clients = self.clients, []
        await asyncio.gather(*(client.close() for client in clients))


def hosted_modules(
    services: Sequence[str], settings: AlertSettings | None
) -> Callable[[Dependencies], list[ServiceModule]]:
    """The slices to host, the alert one with `settings` when given."""

    def build(deps: Dependencies) -> list[ServiceModule]:
        return [
            create_module(deps, settings=settings) if name == "alert" else factory_for(name)(deps)
            for name in services
        ]

    return build


@asynccontextmanager
async def alert_stack(
    kind: str,
    tmp_path: Path,
    *,
    settings: AlertSettings | None = None,
    clock: Clock | None = None,
    **overrides: object,
) -> AsyncIterator[Stack]:
    """A fresh `kind` database ("sqlite" or "postgres") and a server hosting user, market data
    and alerts on it."""
    async with fresh_database_url(kind, tmp_path) as url:
        base = make_settings(url, tmp_path, services=SERVICES, env=TEST_ENV)
        server_settings = dataclasses.replace(base, **overrides)  # type: ignore[arg-type]
        async with running_server(
            server_settings, clock=clock, modules=hosted_modules(SERVICES, settings)
        ) as running:
            stack = Stack(running, kind)
            try:
                yield stack
            finally:
                await stack.close()


def request_for(method: MethodDescriptor, *, name: str, parent: str, etag: str = "") -> Message:
    """A `method` request aimed at the alert `name` (collection methods: at `parent`), with only
    what else it needs to pass validation. A method that names no alert or parent fails here,
    so a new RPC is noticed rather than skipped."""
    request: Any = GetMessageClass(method.input_type)()
    fields = method.input_type.fields_by_name
    aimed = False
    if "name" in fields:
        request.name = name
        aimed = True
    if "parent" in fields:
        # Event methods take an alert as their parent; collection methods the user.
        request.parent = name if method.name.endswith("Events") else parent
        aimed = True
    if "alert" in fields:
        request.alert.name = name
        request.alert.symbol = "AAPL"
        request.alert.condition.CopyFrom(price_above())
        request.alert.etag = etag
        aimed = True
    if "update_mask" in fields:
        request.update_mask.paths.append("note")
    if "etag" in fields:
        request.etag = etag
    if "heartbeat_interval" in fields:
        request.heartbeat_interval.seconds = 1  # a stream's first message comes soon
    assert aimed, f"{method.full_name}: no name/parent/alert field to aim it with"
    message: Message = request
    return message
