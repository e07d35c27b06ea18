"""A dependency going away mid-service (PostgreSQL, Redis), met through a proxy the test cuts:
calls that need it end UNAVAILABLE with RetryInfo (what clients retry), never INTERNAL or
UNKNOWN, and the answer names no class, host or port; calls that do not need it (a signed-in
call with Redis away: the deny-list is mirrored from the database) keep working; once the
dependency is back, calls succeed again."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import grpc
from google.rpc import error_details_pb2, status_pb2
from sqlalchemy.engine import make_url

from optix.marketdata.v1 import marketdata_service_pb2, marketdata_service_pb2_grpc
from optix.user.v1 import user_service_pb2, user_service_pb2_grpc
from tests.support.backends import fresh_database_url, redis_namespace
from tests.support.server import make_settings, running_server
from tests.support.tcp_proxy import TcpProxy

PASSWORD = "correct horse battery 42"


@asynccontextmanager
async def _user_stub(
    address: str,
) -> AsyncIterator[user_service_pb2_grpc.UserServiceAsyncStub]:
    async with grpc.aio.insecure_channel(address) as channel:
        stub: user_service_pb2_grpc.UserServiceAsyncStub = user_service_pb2_grpc.UserServiceStub(
            channel
        )  # type: ignore[assignment]
        yield stub


@asynccontextmanager
async def _proxied_redis() -> AsyncIterator[tuple[TcpProxy, str, str]]:
    """(proxy, its redis URL, key prefix): the test Redis behind a proxy the test can cut."""
    async with redis_namespace() as (redis, prefix):
        target = urlsplit(redis)
        proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 6379)
        await proxy.start()
        try:
            yield proxy, target._replace(netloc=f"127.0.0.1:{proxy.port}").geturl(), prefix
        finally:
            await proxy.cut()


def _register(email: str) -> user_service_pb2.RegisterRequest:
    return user_service_pb2.RegisterRequest(email=email, password=PASSWORD)


def _assert_retryable_outage(error: grpc.aio.AioRpcError, port: int) -> None:
    assert error.code() == grpc.StatusCode.UNAVAILABLE, (error.code(), error.details())
    message = error.details() or ""
    assert "unavailable; retry shortly" in message, message
    for leak in ("127.0.0.1", str(port), "Error", "<class", "asyncpg", "redis."):
        assert leak not in message, message
    status = next(
        status_pb2.Status.FromString(value)
        for key, value in error.trailing_metadata() or ()
        if key == "grpc-status-details-bin"
    )
    kinds = {detail.type_url.rsplit("/", 1)[-1] for detail in status.details}
    assert "google.rpc.RetryInfo" in kinds, kinds
    retry = next(d for d in status.details if d.Is(error_details_pb2.RetryInfo.DESCRIPTOR))
    info = error_details_pb2.RetryInfo()
    retry.Unpack(info)
    assert info.retry_delay.ToTimedelta().total_seconds() > 0


async def test_postgres_gone_is_unavailable_then_writes_resume(tmp_path: Path) -> None:
    async with fresh_database_url("postgres", tmp_path) as url:
        real = make_url(url)
        proxy = TcpProxy(real.host or "127.0.0.1", real.port or 5432)
        await proxy.start()
        proxied = real.set(port=proxy.port).render_as_string(hide_password=False)
        try:
            async with (
                running_server(make_settings(proxied, tmp_path)) as server,
                _user_stub(server.address) as users,
            ):
                await users.Register(_register(f"before-{uuid.uuid4().hex}@example.com"))
                await proxy.cut()
                try:
                    await users.Register(_register(f"during-{uuid.uuid4().hex}@example.com"))
                except grpc.aio.AioRpcError as error:
                    _assert_retryable_outage(error, proxy.port)
                else:
                    raise AssertionError("Register succeeded with the database gone")
                await proxy.start()
                reply = await users.Register(_register(f"after-{uuid.uuid4().hex}@example.com"))
                assert reply.user.email.startswith("after-")
        finally:
            await proxy.cut()


async def test_redis_gone_leaves_sign_in_signed_in_calls_and_logout_working(tmp_path: Path) -> None:
    async with (
        _proxied_redis() as (proxy, proxied, prefix),
        fresh_database_url("sqlite", tmp_path) as url,
        running_server(
            make_settings(url, tmp_path, redis_url=proxied, redis_prefix=prefix)
        ) as server,
        _user_stub(server.address) as users,
    ):
        reply = await users.Register(_register(f"r-{uuid.uuid4().hex}@example.com"))
        signed_in = (("authorization", f"Bearer {reply.tokens.access_token}"),)
        await proxy.cut()
        # The deny-list is mirrored in memory from the database: no Redis needed.
        me = await users.GetMe(user_service_pb2.GetMeRequest(), metadata=signed_in)
        assert me.user.name == reply.user.name
        # Sign-in limits count in this process meanwhile: accounts and logins go on.
        email = f"during-{uuid.uuid4().hex}@example.com"
        await users.Register(_register(email))
        login = await users.Login(user_service_pb2.LoginRequest(email=email, password=PASSWORD))
        assert login.tokens.access_token
        # A logout during the outage is recorded (the database) and holds.
        await users.Logout(
            user_service_pb2.LogoutRequest(refresh_token=reply.tokens.refresh_token),
            metadata=signed_in,
        )
        try:
            await users.GetMe(user_service_pb2.GetMeRequest(), metadata=signed_in)
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED, error.details()
        else:
            raise AssertionError("a session ended during the outage still worked")
        await proxy.start()
        try:
            await users.GetMe(user_service_pb2.GetMeRequest(), metadata=signed_in)
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED, error.details()
        else:
            raise AssertionError("the ended session works again after the outage")


async def test_redis_gone_ends_quote_streams_so_clients_reconnect(tmp_path: Path) -> None:
    async with (
        _proxied_redis() as (proxy, proxied, prefix),
        fresh_database_url("sqlite", tmp_path) as url,
        running_server(
            make_settings(
                url,
                tmp_path,
                redis_url=proxied,
                redis_prefix=prefix,
                env={"OPTIX_MARKETDATA_TICK_RATE": "20"},
            )
        ) as server,
        _user_stub(server.address) as users,
        grpc.aio.insecure_channel(server.address) as channel,
    ):
        reply = await users.Register(_register(f"q-{uuid.uuid4().hex}@example.com"))
        signed_in = (("authorization", f"Bearer {reply.tokens.access_token}"),)
        quotes = marketdata_service_pb2_grpc.MarketDataServiceStub(channel)

        async def ticks_then_end() -> grpc.aio.AioRpcError | None:
            stream = quotes.StreamQuotes(
                marketdata_service_pb2.StreamQuotesRequest(symbols=["SPY"]),
                metadata=signed_in,
            )
            seen = 0
            try:
                async for message in stream:
                    if message.WhichOneof("payload") == "quotes":
                        seen += 1
                        if seen == 3 and proxy.port and not cut.is_set():
                            cut.set()
                            await proxy.cut()
                        if seen >= 3 and reopened.is_set():
                            return None
            except grpc.aio.AioRpcError as error:
                return error
            raise AssertionError("the stream ended without a status")

        cut, reopened = asyncio.Event(), asyncio.Event()
        async with asyncio.timeout(60):
            ended = await ticks_then_end()
        # Heard at once, not heartbeats without quotes.
        assert ended is not None and ended.code() == grpc.StatusCode.UNAVAILABLE
        assert "reconnect" in (ended.details() or "")
        await proxy.start()
        reopened.set()
        # Reconnecting (as clients do, with backoff) ticks again.
        async with asyncio.timeout(60):
            while (again := await ticks_then_end()) is not None:
                assert again.code() == grpc.StatusCode.UNAVAILABLE
                await asyncio.sleep(0.2)  # the client's reconnect backoff
