"""The SDK against the real services on port 0: sign-up, refresh, errors with details."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import grpc
import pytest

from optix.marketdata.v1 import marketdata_service_pb2
from optix.user.v1 import user_service_pb2
from optix_client import (
    ClientOptions,
    OptixClient,
    OptixError,
    PasswordCredentials,
    SyncOptixClient,
)
from tests.clients.clock import FakeClock
from tests.support.server import RunningServer

PASSWORD = "Blue-Harbor-Lantern-42"


async def test_register_refresh_and_errors(sqlite_server: RunningServer) -> None:
    clock = FakeClock()
    async with OptixClient(sqlite_server.address, options=ClientOptions(clock=clock)) as client:
        await client.register("sdk@example.com", PASSWORD, display_name="SDK")
        first_refresh = client.tokens.session.refresh_token
        me = await client.user.GetMe(user_service_pb2.GetMeRequest())
        assert me.user.email == "sdk@example.com"
        # Past the access token's lifetime: the next call refreshes first (rotating the pair).
        clock.advance(timedelta(days=1) - timedelta(hours=1))
        me_again = await client.user.GetMe(user_service_pb2.GetMeRequest())
        assert me_again.user.name == me.user.name
        assert client.tokens.session.refresh_token not in (None, first_refresh)
        with pytest.raises(OptixError) as bad:
            await client.marketdata.GetQuote(marketdata_service_pb2.GetQuoteRequest(symbol=""))
        assert bad.value.code is grpc.StatusCode.INVALID_ARGUMENT
        assert "symbol" in bad.value.field_violations


async def test_anonymous_call_is_unauthenticated(sqlite_server: RunningServer) -> None:
    async with OptixClient(sqlite_server.address) as client:
        with pytest.raises(OptixError) as denied:
            await client.user.GetMe(user_service_pb2.GetMeRequest())
    assert denied.value.code is grpc.StatusCode.UNAUTHENTICATED


async def test_sync_client_signs_in_with_password(sqlite_server: RunningServer) -> None:
    async with OptixClient(sqlite_server.address) as client:
        await client.register("sync@example.com", PASSWORD)
    creds = PasswordCredentials("sync@example.com", PASSWORD)

    def use_sync_client() -> str:
        with SyncOptixClient(sqlite_server.address, credentials=creds) as sync:
            return sync.user.GetMe(user_service_pb2.GetMeRequest()).user.email

    # The server shares this event loop: the blocking client runs in a worker thread.
    assert await asyncio.to_thread(use_sync_client) == "sync@example.com"
