"""Watchlist test harness: real servers on port 0, fresh users signed in through the SDK,
and helpers that page through every list, build any RPC's request and expect errors."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from google.protobuf import field_mask_pb2
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from optix.marketdata.v1 import marketdata_service_pb2
from optix.watchlist.v1 import watchlist_pb2, watchlist_service_pb2
from optix_client.client import OptixClient
from optix_server.infra.module import Dependencies, ServiceModule
from optix_server.services import factory_for
from optix_server.watchlist.config import WatchlistSettings
from optix_server.watchlist.wiring import create_module
from tests.support.backends import fresh_database_url

# Re-exported: the watchlist tests import them from here.
from tests.support.sdk_errors import expect as expect
from tests.support.sdk_errors import invalid as invalid
from tests.support.sdk_errors import violations as violations
from tests.support.server import RunningServer, make_settings, running_server

if TYPE_CHECKING:
    from optix.watchlist.v1.watchlist_service_pb2_grpc import WatchlistServiceAsyncStub

PASSWORD = "correct horse battery staple 42"
SERVICE = watchlist_service_pb2.DESCRIPTOR.services_by_name["WatchlistService"]
# Every RPC of the service, so a method added later is covered by the generic tests.
METHODS: tuple[MethodDescriptor, ...] = tuple(SERVICE.methods)
BASIC = watchlist_pb2.WATCHLIST_VIEW_BASIC
WITH_QUOTES = watchlist_pb2.WATCHLIST_VIEW_WITH_QUOTES
DEFAULT_NAME = "My Watchlist"
# Tickers the simulated market data provider quotes by default.
KNOWN = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "AMD", "SPY", "QQQ")
# Every test registers its own users: the per-address registration limit would stop a run.
TEST_ENV = {"OPTIX_USER_REGISTRATIONS_PER_ADDRESS": "1000000"}
SERVICES = ("user", "marketdata", "watchlist")

Watchlist = watchlist_pb2.Watchlist


def hosted_modules(
    services: Sequence[str], watchlist: WatchlistSettings | None
) -> Callable[[Dependencies], list[ServiceModule]]:
    """The slices to host, the watchlist one with `watchlist` limits when given."""

    def build(deps: Dependencies) -> list[ServiceModule]:
        return [
            create_module(deps, settings=watchlist)
            if name == "watchlist"
            else factory_for(name)(deps)
            for name in services
        ]

    return build


@dataclass
class Account:
    """A registered user and their signed-in SDK client."""

    client: OptixClient
    user_id: str

    @property
    def wl(self) -> WatchlistServiceAsyncStub:
        """The user's WatchlistService stub."""
        return self.client.watchlist

    @property
    def parent(self) -> str:
        """`users/{id}`."""
        return f"users/{self.user_id}"

    def name(self, watchlist_id: str, *, user: str | None = None) -> str:
        """`users/{user}/watchlists/{watchlist_id}` (the account's own id by default)."""
        return f"users/{user or self.user_id}/watchlists/{watchlist_id}"

    async def lists(self, view: watchlist_pb2.WatchlistView.ValueType = BASIC) -> list[Watchlist]:
        """Every list, paging through them all."""
        result: list[Watchlist] = []
        token = ""
        while True:
            reply = await self.wl.ListWatchlists(
                watchlist_service_pb2.ListWatchlistsRequest(
                    parent="users/me", page_size=100, page_token=token, view=view
                )
            )
            result.extend(reply.watchlists)
            token = reply.next_page_token
            if not token:
                return result

    async def default(self) -> Watchlist:
        """The default list (created by the server on first use)."""
        defaults = [w for w in await self.lists() if w.is_default]
        assert len(defaults) == 1, defaults
        return defaults[0]

    async def create(
        self, display_name: str = "Tech", symbols: Sequence[str] = (), request_id: str = ""
    ) -> Watchlist:
        """A new list."""
        reply = await self.wl.CreateWatchlist(
            watchlist_service_pb2.CreateWatchlistRequest(
                parent="users/me",
                watchlist=Watchlist(
                    display_name=display_name,
                    items=[watchlist_pb2.WatchlistItem(symbol=s) for s in symbols],
                ),
                request_id=request_id,
            )
        )
        return reply.watchlist

    async def get(
        self, name: str, view: watchlist_pb2.WatchlistView.ValueType = BASIC
    ) -> Watchlist:
        """One list."""
        reply = await self.wl.GetWatchlist(
            watchlist_service_pb2.GetWatchlistRequest(name=name, view=view)
        )
        return reply.watchlist

    async def add(
        self, name: str, symbols: Sequence[str], *, index: int | None = None, etag: str = ""
    ) -> Watchlist:
        """AddSymbols."""
        request = watchlist_service_pb2.AddSymbolsRequest(name=name, symbols=symbols, etag=etag)
        if index is not None:
            request.index = index
        return (await self.wl.AddSymbols(request)).watchlist

    async def rename(self, name: str, display_name: str, *, etag: str = "") -> Watchlist:
        """UpdateWatchlist of display_name."""
        reply = await self.wl.UpdateWatchlist(
            watchlist_service_pb2.UpdateWatchlistRequest(
                watchlist=Watchlist(name=name, display_name=display_name, etag=etag),
                update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
            )
        )
        return reply.watchlist


def symbols_of(watchlist: Watchlist) -> list[str]:
    """The list's symbols in order."""
    return [item.symbol for item in watchlist.items]


@dataclass
class Stack:
    """A running server with the watchlist slice, and the SDK clients a test opened on it."""

    running: RunningServer
    kind: str
    clients: list[OptixClient] = field(default_factory=list)
    option_cache: list[str] = field(default_factory=list)

    @property
    def address(self) -> str:
        """host:port of the server."""
        return self.running.address

    def fork(self) -> Stack:
        """The same server with a separate set of clients (one per test)."""
        return Stack(self.running, self.kind, option_cache=self.option_cache)

    def client(self) -> OptixClient:
        """A new, signed-out client (closed with the stack)."""
        client = OptixClient(self.address)
        self.clients.append(client)
        return client

    async def account(self) -> Account:
        """A freshly registered user."""
        client = self.client()
        reply = await client.register(f"wl-{uuid.uuid4().hex}@example.com", PASSWORD)
        return Account(client, reply.user.name.removeprefix("users/"))

    async def option_symbols(self, count: int) -> list[str]:
        """`count` listed option contracts (canonical OCC symbols) the market data quotes."""
        if len(self.option_cache) < count:
            client = self.client()
            await client.register(f"wl-chain-{uuid.uuid4().hex}@example.com", PASSWORD)
            for underlying in ("AAPL", "MSFT", "NVDA"):
                reply = await client.marketdata.GetOptionsChain(
                    marketdata_service_pb2.GetOptionsChainRequest(underlying=underlying)
                )
                self.option_cache.extend(
                    o.contract.symbol
                    for o in reply.chain.options
                    if o.contract.symbol not in self.option_cache
                )
                if len(self.option_cache) >= count:
                    break
        assert len(self.option_cache) >= count, "the simulated chains are smaller than assumed"
        return self.option_cache[:count]

    async def close(self) -> None:
        """Close every client this stack opened."""
        clients, self.clients = self.clients, []
        await asyncio.gather(*(client.close() for client in clients))


@asynccontextmanager
async def watchlist_stack(
    kind: str,
    tmp_path: Path,
    *,
    watchlist: WatchlistSettings | None = None,
    services: Sequence[str] = SERVICES,
    env: dict[str, str] | None = None,
    **overrides: object,
) -> AsyncIterator[Stack]:
    """A fresh `kind` database ("sqlite" or "postgres") and a server hosting `services` on it,
    the watchlist slice with `watchlist` limits (default: from the environment)."""
    async with fresh_database_url(kind, tmp_path) as url:
        base = make_settings(url, tmp_path, services=services, env={**TEST_ENV, **(env or {})})
        settings = dataclasses.replace(base, **overrides)  # type: ignore[arg-type]
        async with running_server(settings, modules=hosted_modules(services, watchlist)) as running:
            stack = Stack(running, kind)
            try:
                yield stack
            finally:
                await stack.close()


def request_for(
    method: MethodDescriptor,
    *,
    name: str,
    parent: str,
    etag: str = "",
    symbol: str = "AAPL",
) -> Message:
    """A `method` request aimed at the watchlist `name` (collection methods: at `parent`),
    with only what else it needs to pass validation. A method that names no watchlist or
    parent fails here, so a new RPC is noticed rather than skipped."""
    request: Any = GetMessageClass(method.input_type)()
    fields = method.input_type.fields_by_name
    aimed = False
    if "name" in fields:
        request.name = name
        aimed = True
    if "parent" in fields:
        request.parent = parent
        aimed = True
    if "watchlist" in fields:
        # Update is aimed through watchlist.name; on Create it is output only (ignored).
        request.watchlist.name = name
        request.watchlist.display_name = "Probe"
        request.watchlist.etag = etag
        aimed = True
    if "update_mask" in fields:
        request.update_mask.paths.append("display_name")
    if "symbols" in fields:
        request.symbols.append(symbol)
    if "symbol" in fields:
        request.symbol = symbol
    if "etag" in fields:
        request.etag = etag
    assert aimed, f"{method.full_name}: no name/parent/watchlist field to aim it with"
    message: Message = request
    return message


def takes_etag(method: MethodDescriptor) -> bool:
    """Whether the method's request carries an etag (its own field, or the Update's resource)."""
    fields = method.input_type.fields_by_name
    return "etag" in fields or ("watchlist" in fields and "update_mask" in fields)


async def call(account: Account, method: MethodDescriptor, request: Message) -> Message:
    """Call `method` of WatchlistService with `request` through the account's SDK client."""
    reply: Message = await getattr(account.wl, method.name)(request)
    return reply


def names_in(reply: Message) -> list[str]:
    """The watchlist names a response carries (`watchlist` or `watchlists`)."""
    found: list[str] = []
    for descriptor, value in reply.ListFields():
        if descriptor.message_type is Watchlist.DESCRIPTOR:
            values = value if descriptor.is_repeated else [value]
            found.extend(w.name for w in values)
    return found
