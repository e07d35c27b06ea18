"""The traffic of the production fault tests, through the Python SDK as real callers use it:
unary callers mixing reads and idempotent writes, and quote streams that reconnect on
UNAVAILABLE. Everything they see is recorded with monotonic timestamps, so a test can count
failures by code in any window, check every write that answered OK, and measure how long
streams took to resume or to tick again."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import grpc
from google.protobuf import duration_pb2, field_mask_pb2

from optix.marketdata.v1 import marketdata_service_pb2 as md
from optix.marketdata.v1 import quote_pb2
from optix.user.v1 import user_pb2, user_service_pb2
from optix.watchlist.v1 import watchlist_pb2
from optix.watchlist.v1 import watchlist_service_pb2 as wl
from optix_client import ClientOptions, OptixClient, OptixError, PasswordCredentials

PASSWORD = "Quiet-Harbor-Lantern-42"
QUOTE_SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOGL")
STREAM_SYMBOLS = (("AAPL", "MSFT"), ("NVDA", "AMZN", "GOOGL"), ("AAPL", "NVDA"))
WATCHLIST_PREFIX = "fault-"
# Bounds on any one worker, whatever the test does: calls, and tries of one pending create.
MAX_CALLS_PER_WORKER = 5_000
MAX_CREATE_TRIES = 30
# Reconnect backoff of a stream after an UNAVAILABLE: at once, then growing to this.
MAX_RECONNECT_BACKOFF_S = 0.5


@dataclass(frozen=True)
class Account:
    """A registered user the traffic signs in as."""

    email: str
    password: str = PASSWORD


def new_account(label: str) -> Account:
    """A fresh address (not registered yet)."""
    return Account(f"{label}-{uuid.uuid4().hex[:10]}@example.com")


async def register(target: str, accounts: Sequence[Account]) -> None:
    """Register `accounts` through `target` (a few at a time)."""
    async with OptixClient(target) as client:
        for account in accounts:
            await client.user.Register(
                user_service_pb2.RegisterRequest(email=account.email, password=account.password)
            )


def sdk_client(target: str, account: Account | None = None) -> OptixClient:
    """An SDK client with its default retry policy and deadline, signed in as `account`."""
    credentials = None if account is None else PasswordCredentials(account.email, account.password)
    return OptixClient(target, credentials=credentials, options=ClientOptions())


@dataclass(frozen=True)
class Call:
    """One finished unary call: when it started and ended, its method and its code."""

    started: float
    ended: float
    method: str
    code: str
    message: str = ""


def code_of(error: BaseException) -> str:
    """The gRPC code name of a failed call (OptixError or a raw grpc error)."""
    if isinstance(error, OptixError):
        return error.code.name
    if isinstance(error, grpc.aio.AioRpcError):
        return error.code().name
    if isinstance(error, TimeoutError):
        return "CLIENT_TIMEOUT"
    return type(error).__name__


@dataclass
class WriteLog:
    """The writes one worker made: watchlists created with a request_id (answered OK, and the
    one still being retried), display names set with UpdateMe."""

    created: dict[str, str] = field(default_factory=dict)  # request_id -> watchlist name
    pending: tuple[str, str] | None = None  # (request_id, display_name) not answered OK yet
    pending_tries: int = 0
    names_ok: list[str] = field(default_factory=list)
    # UpdateMe values that failed after the last OK one: each may or may not have been applied.
    names_unsure: list[str] = field(default_factory=list)


class UnaryWorker:
    """One caller: its own SDK client and account, cycling GetMe, GetQuote, UpdateMe,
    BatchGetQuotes, CreateWatchlist (request_id) and ListWatchlists, with a pause between
    calls so the load stays a workload, not a benchmark."""

    def __init__(
        self, index: int, client: OptixClient, calls: list[Call], pause: float, run: str
    ) -> None:
        self.index = index
        self._run = run
        self.client = client
        self._calls = calls
        self._pause = pause
        self.writes = WriteLog()
        self._n = 0

    def _operations(self) -> list[tuple[str, Callable[[], Awaitable[object]]]]:
        symbol = QUOTE_SYMBOLS[(self.index + self._n) % len(QUOTE_SYMBOLS)]
        return [
            ("GetMe", lambda: self.client.user.GetMe(user_service_pb2.GetMeRequest())),
            (
                "GetQuote",
                lambda: self.client.marketdata.GetQuote(md.GetQuoteRequest(symbol=symbol)),
            ),
            ("UpdateMe", self._update_me),
            (
                "BatchGetQuotes",
                lambda: self.client.marketdata.BatchGetQuotes(
                    md.BatchGetQuotesRequest(symbols=list(QUOTE_SYMBOLS[:3]))
                ),
            ),
            ("CreateWatchlist", self._create_watchlist),
            (
                "ListWatchlists",
                lambda: self.client.watchlist.ListWatchlists(
                    wl.ListWatchlistsRequest(parent="users/me", page_size=5)
                ),
            ),
        ]

    async def _update_me(self) -> None:
        name = f"worker {self.index} #{self._n}"
        request = user_service_pb2.UpdateMeRequest(
            user=user_pb2.User(display_name=name),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
        )
        try:
            await self.client.user.UpdateMe(request)
        except BaseException:
            self.writes.names_unsure.append(name)
            raise
        self.writes.names_ok.append(name)
        self.writes.names_unsure.clear()

    async def _create_watchlist(self) -> None:
        writes = self.writes
        if writes.pending is None or writes.pending_tries >= MAX_CREATE_TRIES:
            name = f"{WATCHLIST_PREFIX}{self._run}-{self.index}-{self._n}"
            writes.pending = (uuid.uuid4().hex, name)
            writes.pending_tries = 0
        request_id, display_name = writes.pending
        writes.pending_tries += 1
        reply = await self.client.watchlist.CreateWatchlist(
            wl.CreateWatchlistRequest(
                parent="users/me",
                watchlist=watchlist_pb2.Watchlist(display_name=display_name),
                request_id=request_id,
            )
        )
        assert reply.watchlist.display_name == display_name
        writes.created[request_id] = reply.watchlist.name
        writes.pending = None

    async def run(self, stop: asyncio.Event) -> None:
        """Call until `stop` is set (or MAX_CALLS_PER_WORKER calls)."""
        while not stop.is_set() and self._n < MAX_CALLS_PER_WORKER:
            method, call = self._operations()[self._n % 6]
            self._n += 1
            started = time.monotonic()
            try:
                await call()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                message = error.message if isinstance(error, OptixError) else repr(error)
                self._calls.append(
                    Call(started, time.monotonic(), method, code_of(error), message[:200])
                )
            else:
                self._calls.append(Call(started, time.monotonic(), method, "OK"))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._pause):
                    await stop.wait()

    async def lost_writes(self) -> list[str]:
        """Every write that answered OK and is not there now (one problem per line), and any
        create done twice for one request_id."""
        problems: list[str] = []
        names: Counter[str] = Counter()
        found: set[str] = set()
        token = ""
        for _ in range(1000):  # pages of 100: bounded
            page = await self.client.watchlist.ListWatchlists(
                wl.ListWatchlistsRequest(parent="users/me", page_size=100, page_token=token)
            )
            for item in page.watchlists:
                found.add(item.name)
                names[item.display_name] += 1
            token = page.next_page_token
            if not token:
                break
        for request_id, name in self.writes.created.items():
            if name not in found:
                problems.append(f"worker {self.index}: {name} (request {request_id}) is gone")
        twice = [n for n, c in names.items() if n.startswith(WATCHLIST_PREFIX) and c > 1]
        if twice:
            problems.append(f"worker {self.index}: created more than once: {twice}")
        if self.writes.names_ok:
            me = await self.client.user.GetMe(user_service_pb2.GetMeRequest())
            allowed = {self.writes.names_ok[-1], *self.writes.names_unsure}
            if me.user.display_name not in allowed:
                problems.append(
                    f"worker {self.index}: display name {me.user.display_name!r}, last OK"
                    f" UpdateMe set {self.writes.names_ok[-1]!r}"
                )
        return problems


@dataclass
class Ending:
    """How one connection of a stream ended, and when its next connection said something."""

    ended: float
    code: str
    message: str
    resumed: float | None = None

    @property
    def resume_delay(self) -> float | None:
        """Seconds from the ending to the next connection's first message."""
        return None if self.resumed is None else self.resumed - self.ended


class QuoteStream:
    """One StreamQuotes caller that reconnects as a client does on UNAVAILABLE (at once, then
    with a short backoff); it reconnects after any other ending too, so the measurements go
    on, and records every ending's code, so a test can tell which a real client would not
    have survived. Per symbol, sequences must only grow: within a connection a repeated or
    lower one is a violation; a reconnection's snapshot may repeat the last quote seen (the
    protocol has no resume point, so that is the same update sent again, counted as
    `resent`) but never go back."""

    def __init__(self, index: int, client: OptixClient, symbols: Sequence[str]) -> None:
        self.index = index
        self.client = client
        self.symbols = tuple(symbols)
        self.connections = 0
        self.endings: list[Ending] = []
        self.violations: list[str] = []
        self.resent = 0
        # (received, connection number) of every quote message after a connection's first one:
        # live ticks, not the snapshot a (re)connection starts with.
        self.live: list[tuple[float, int]] = []
        self.last_sequence: dict[str, int] = {}

    def live_after(self, moment: float) -> float | None:
        """When the first live tick after `moment` arrived, if one did."""
        return next((t for t, _ in self.live if t > moment), None)

    def endings_between(self, start: float, end: float) -> list[Ending]:
        """The connection endings in [start, end]."""
        return [e for e in self.endings if start <= e.ended <= end]

    def _check(
        self, quotes: Iterable[quote_pb2.Quote], connection: int, here: dict[str, int]
    ) -> None:
        for quote in quotes:
            symbol, sequence = quote.symbol, quote.sequence
            seen_here = here.get(symbol)
            if seen_here is not None:
                if sequence <= seen_here:
                    kind = "duplicate" if sequence == seen_here else "out-of-order"
                    self.violations.append(
                        f"stream {self.index} connection {connection}: {kind} {symbol}"
                        f" {sequence} after {seen_here}"
                    )
            else:
                last = self.last_sequence.get(symbol)
                if last is not None and sequence < last:
                    self.violations.append(
                        f"stream {self.index} connection {connection}: {symbol} went back to"
                        f" {sequence} after {last} on reconnecting"
                    )
                elif last == sequence:
                    self.resent += 1
            here[symbol] = max(sequence, seen_here or 0)
            self.last_sequence[symbol] = max(sequence, self.last_sequence.get(symbol, 0))

    async def run(self, stop: asyncio.Event) -> None:
        """Stream until cancelled, reconnecting after every ending."""
        backoff = 0.0
        while not stop.is_set():
            self.connections += 1
            connection = self.connections
            here: dict[str, int] = {}
            snapshot_seen = False
            request = md.StreamQuotesRequest(
                symbols=list(self.symbols), heartbeat_interval=duration_pb2.Duration(seconds=1)
            )
            try:
                async for message in self.client.marketdata.StreamQuotes(request):
                    now = time.monotonic()
                    if self.endings and self.endings[-1].resumed is None:
                        self.endings[-1].resumed = now
                    backoff = 0.0
                    if message.WhichOneof("payload") != "quotes":
                        continue
                    self._check(message.quotes.quotes, connection, here)
                    if snapshot_seen:
                        self.live.append((now, connection))
                    snapshot_seen = True
                self.endings.append(Ending(time.monotonic(), "OK", "the stream ended"))
            except asyncio.CancelledError:
                raise
            except Exception as error:
                message_text = error.message if isinstance(error, OptixError) else repr(error)
                self.endings.append(Ending(time.monotonic(), code_of(error), message_text[:200]))
            # A real client reconnects at once, then backs off while the server is away.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backoff):
                    await stop.wait()
            backoff = min(max(backoff * 2, 0.05), MAX_RECONNECT_BACKOFF_S)


@dataclass
class Traffic:
    """Unary workers and quote streams running against one target."""

    workers: list[UnaryWorker]
    streams: list[QuoteStream]
    calls: list[Call]
    started: float
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def launch(self) -> None:
        """Start every worker and stream."""
        self._tasks = [asyncio.create_task(w.run(self._stop)) for w in self.workers]
        self._tasks += [asyncio.create_task(s.run(self._stop)) for s in self.streams]

    async def halt(self) -> None:
        """Stop the load (the clients stay open, for checks): workers finish their call,
        streams are cancelled."""
        self._stop.set()
        for task in self._tasks[len(self.workers) :]:
            task.cancel()  # streams end only when cancelled
        async with asyncio.timeout(30):
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def calls_between(self, start: float, end: float) -> list[Call]:
        """Calls that started in [start, end)."""
        return [c for c in self.calls if start <= c.started < end]

    @staticmethod
    def failures(calls: Sequence[Call]) -> Counter[str]:
        """Failed calls by code."""
        return Counter(c.code for c in calls if c.code != "OK")

    @staticmethod
    def failures_by_method(calls: Sequence[Call]) -> Counter[str]:
        """Failed calls by "method code"."""
        return Counter(f"{c.method} {c.code}" for c in calls if c.code != "OK")

    def stream_violations(self) -> list[str]:
        """Every duplicate or out-of-order sequence any stream saw."""
        return [v for s in self.streams for v in s.violations]

    def stream_endings(self) -> Counter[str]:
        """Stream endings by code."""
        return Counter(e.code for s in self.streams for e in s.endings)

    async def wait_live(self, after: float, within: float) -> dict[int, float | None]:
        """Wait (up to `within` s) until every stream has a live tick after `after`; per
        stream, the seconds from `after` to it (None: none in time)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if all(s.live_after(after) is not None for s in self.streams):
                break
            await asyncio.sleep(0.05)
        return {
            s.index: None if (t := s.live_after(after)) is None else t - after for s in self.streams
        }

    async def wait_calls(self, count: int, within: float) -> None:
        """Wait (up to `within` s) until `count` more calls have finished."""
        target = len(self.calls) + count
        for _ in range(int(within / 0.05) + 1):
            if len(self.calls) >= target:
                return
            await asyncio.sleep(0.05)

    async def lost_writes(self) -> list[str]:
        """Every OK write that is missing now, over every worker."""
        problems: list[str] = []
        for worker in self.workers:
            problems.extend(await worker.lost_writes())
        return problems


@asynccontextmanager
async def traffic(
    target: str,
    unary_accounts: Sequence[Account],
    stream_accounts: Sequence[Account],
    *,
    pause: float = 0.1,
) -> AsyncIterator[Traffic]:
    """One unary worker per `unary_accounts` entry and one quote stream per `stream_accounts`
    entry, each with its own SDK client, running until halt() or the context's end; yields
    once every client has signed in."""
    calls: list[Call] = []
    clients = [sdk_client(target, a) for a in (*unary_accounts, *stream_accounts)]
    try:
        # Sign in first, so the load starts all at once; a few at a time, as the server
        # bounds the password hashes it runs at once (more would be RESOURCE_EXHAUSTED).
        gate = asyncio.Semaphore(4)

        async def sign_in(client: OptixClient) -> None:
            async with gate:
                await client.tokens.access_token()

        await asyncio.gather(*(sign_in(c) for c in clients))
        run = uuid.uuid4().hex[:8]
        workers = [
            UnaryWorker(i, client, calls, pause, run)
            for i, client in enumerate(clients[: len(unary_accounts)])
        ]
        streams = [
            QuoteStream(i, client, STREAM_SYMBOLS[i % len(STREAM_SYMBOLS)])
            for i, client in enumerate(clients[len(unary_accounts) :])
        ]
        load = Traffic(workers, streams, calls, time.monotonic())
        load.launch()
        try:
            yield load
        finally:
            await load.halt()
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
