"""Scripted User and MarketData servicers on a real grpc.aio server in a thread, for SDK tests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import grpc
from google.protobuf import timestamp_pb2

from optix.marketdata.v1 import marketdata_service_pb2, marketdata_service_pb2_grpc, quote_pb2
from optix.user.v1 import user_pb2, user_service_pb2, user_service_pb2_grpc
from optix_server.infra import errors
from optix_server.infra.grpc_errors import to_grpc_status, to_rpc_status

PASSWORD = "correct horse battery staple"
MFA_PASSWORD = "needs a second factor"


@dataclass
class Calls:
    """What the fake services saw, for assertions."""

    logins: int = 0
    refreshes: int = 0
    logouts: int = 0
    flaky_attempts: int = 0
    authorization: list[str] = field(default_factory=list)
    time_remaining: list[float | None] = field(default_factory=list)


def _timestamp(at: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(at)
    return stamp


async def _abort(
    context: grpc.aio.ServicerContext[object, object], error: errors.OptixError
) -> None:
    await context.abort_with_status(to_grpc_status(to_rpc_status(error)))


def _auth_header(context: grpc.aio.ServicerContext[object, object]) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            return str(value)
    return ""


class FakeUsers(user_service_pb2_grpc.UserServiceServicer):
    """Issues numbered tokens that expire `ttl` after issue; refresh tokens are single use."""

    def __init__(self, calls: Calls, ttl: timedelta, clock: Callable[[], datetime]) -> None:
        self.calls = calls
        self.ttl = ttl
        self.clock = clock
        self.serial = 0
        self.live_refresh: set[str] = set()
        self.live_access: set[str] = set()

    def _tokens(self) -> user_pb2.TokenPair:
        self.serial += 1
        access, refresh = f"access-{self.serial}", f"refresh-{self.serial}"
        self.live_access.add(access)
        self.live_refresh.add(refresh)
        now = self.clock()
        return user_pb2.TokenPair(
            access_token=access,
            access_token_expire_time=_timestamp(now + self.ttl),
            refresh_token=refresh,
            refresh_token_expire_time=_timestamp(now + timedelta(days=30)),
            token_type="Bearer",
        )

    async def Login(
        self,
        request: user_service_pb2.LoginRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> user_service_pb2.LoginResponse:
        self.calls.logins += 1
        if request.password == MFA_PASSWORD:
            challenge = user_pb2.MfaChallenge(challenge_id="challenge-1")
            return user_service_pb2.LoginResponse(mfa_challenge=challenge)
        if request.password != PASSWORD:
            await _abort(context, errors.Unauthenticated("wrong email or password"))
        return user_service_pb2.LoginResponse(tokens=self._tokens())

    async def Register(
        self,
        request: user_service_pb2.RegisterRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> user_service_pb2.RegisterResponse:
        user = user_pb2.User(name="users/1", email=request.email)
        return user_service_pb2.RegisterResponse(user=user, tokens=self._tokens())

    async def RefreshToken(
        self,
        request: user_service_pb2.RefreshTokenRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> user_service_pb2.RefreshTokenResponse:
        self.calls.refreshes += 1
        if request.refresh_token not in self.live_refresh:
            await _abort(context, errors.Unauthenticated("refresh token is not valid"))
        self.live_refresh.discard(request.refresh_token)
        return user_service_pb2.RefreshTokenResponse(tokens=self._tokens())

    async def GetMe(
        self,
        request: user_service_pb2.GetMeRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> user_service_pb2.GetMeResponse:
        header = _auth_header(context)
        self.calls.authorization.append(header)
        if header.removeprefix("Bearer ") not in self.live_access:
            await _abort(context, errors.Unauthenticated("missing or invalid access token"))
        return user_service_pb2.GetMeResponse(user=user_pb2.User(name="users/1"))

    async def Logout(
        self,
        request: user_service_pb2.LogoutRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> user_service_pb2.LogoutResponse:
        self.calls.logouts += 1
        self.calls.authorization.append(_auth_header(context))
        self.live_refresh.discard(request.refresh_token)
        return user_service_pb2.LogoutResponse()


class FakeMarketData(marketdata_service_pb2_grpc.MarketDataServiceServicer):
    """GetQuote: "BAD" -> INVALID_ARGUMENT with details, "FLAKY" -> UNAVAILABLE twice then OK."""

    def __init__(self, calls: Calls) -> None:
        self.calls = calls

    async def GetQuote(
        self,
        request: marketdata_service_pb2.GetQuoteRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> marketdata_service_pb2.GetQuoteResponse:
        self.calls.authorization.append(_auth_header(context))
        self.calls.time_remaining.append(context.time_remaining())
        if request.symbol == "BAD":
            violation = errors.FieldViolation("symbol", "not a ticker or OCC symbol")
            await _abort(context, errors.InvalidArgument("bad symbol", [violation]))
        if request.symbol == "BUSY":
            await _abort(
                context, errors.ResourceExhausted("slow down", retry_after=timedelta(seconds=7))
            )
        if request.symbol == "FLAKY":
            self.calls.flaky_attempts += 1
            if self.calls.flaky_attempts < 3:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "try again")
        return marketdata_service_pb2.GetQuoteResponse(
            quote=quote_pb2.Quote(symbol=request.symbol, last=100.0)
        )

    async def StreamQuotes(
        self,
        request: marketdata_service_pb2.StreamQuotesRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> AsyncIterator[marketdata_service_pb2.StreamQuotesResponse]:
        self.calls.time_remaining.append(context.time_remaining())
        for n, symbol in enumerate(request.symbols):
            batch = quote_pb2.QuoteBatch(quotes=[quote_pb2.Quote(symbol=symbol, sequence=n)])
            yield marketdata_service_pb2.StreamQuotesResponse(quotes=batch)
        if "FAIL" in request.symbols:
            await _abort(context, errors.NotFound("no such symbol", resource_name="FAIL"))


@dataclass
class FakeServer:
    """Address and call log of a running fake server."""

    address: str
    calls: Calls
    users: FakeUsers


@contextmanager
def fake_server(
    clock: Callable[[], datetime], ttl: timedelta = timedelta(minutes=15)
) -> Iterator[FakeServer]:
    """Run the fakes on 127.0.0.1:0 in a thread with its own loop (sync clients block theirs).

    Tokens expire by `clock`, the same clock the client under test reads."""
    calls = Calls()
    # The fakes implement only what the SDK tests call; the rest stays UNIMPLEMENTED.
    users = FakeUsers(calls, ttl, clock)  # type: ignore[abstract]
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    holder: dict[str, object] = {}

    async def run() -> None:
        server = grpc.aio.server()
        user_service_pb2_grpc.add_UserServiceServicer_to_server(users, server)
        marketdata_service_pb2_grpc.add_MarketDataServiceServicer_to_server(
            FakeMarketData(calls),  # type: ignore[abstract]
            server,
        )
        holder["port"] = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        stop = asyncio.Event()
        holder["stop"] = stop
        ready.set()
        await stop.wait()
        await server.stop(None)

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    assert ready.wait(10), "fake server did not start"
    try:
        yield FakeServer(f"127.0.0.1:{holder['port']}", calls, users)
    finally:
        stop = holder["stop"]
        assert isinstance(stop, asyncio.Event)
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
