"""Open streams end when their sign-in session ends (here by Logout), on every replica."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2

from optix.marketdata.v1 import marketdata_service_pb2, marketdata_service_pb2_grpc
from optix.user.v1 import user_service_pb2, user_service_pb2_grpc
from tests.support.backends import redis_namespace
from tests.support.errors import detail
from tests.support.server import make_settings, running_server
from tests.user.harness import STRONG_PASSWORD, bearer


async def test_logout_ends_the_sessions_open_streams(broker_kind: str, tmp_path: Path) -> None:
    async with contextlib.AsyncExitStack() as stack:
        redis_url: str | None = None
        prefix = "optix:"
        if broker_kind == "redis":
            redis_url, prefix = await stack.enter_async_context(redis_namespace())
        await _logout_ends_streams(tmp_path, redis_url, prefix)


async def _logout_ends_streams(tmp_path: Path, redis_url: str | None, prefix: str) -> None:
    settings = make_settings(
        f"sqlite+aiosqlite:///{(tmp_path / 'optix.db').as_posix()}",
        tmp_path,
        services=("user", "marketdata"),
        redis_url=redis_url,
        redis_prefix=prefix,
    )
    async with running_server(settings) as running, running.channel() as channel:
        users = user_service_pb2_grpc.UserServiceStub(channel)
        quotes = marketdata_service_pb2_grpc.MarketDataServiceStub(channel)
        tokens = (
            await users.Register(
                user_service_pb2.RegisterRequest(email="ada@example.com", password=STRONG_PASSWORD)
            )
        ).tokens
        request = marketdata_service_pb2.StreamQuotesRequest(symbols=["AAPL"])
        ended = quotes.StreamQuotes(request, metadata=bearer(tokens.access_token))
        other_session = (
            await users.Login(
                user_service_pb2.LoginRequest(email="ada@example.com", password=STRONG_PASSWORD)
            )
        ).tokens
        kept = quotes.StreamQuotes(request, metadata=bearer(other_session.access_token))
        await ended.read()
        await kept.read()
        await users.Logout(
            user_service_pb2.LogoutRequest(refresh_token=tokens.refresh_token),
            metadata=bearer(tokens.access_token),
        )
        # The guard only turns "never ends" into a failure instead of a hang.
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async with asyncio.timeout(30):
                while True:
                    await ended.read()
        # The same user's other session streams on.
        assert isinstance(await kept.read(), marketdata_service_pb2.StreamQuotesResponse)
        kept.cancel()
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    reason = detail(info.value, error_details_pb2.ErrorInfo)
    assert reason is not None and reason.reason == "SESSION_ENDED"
