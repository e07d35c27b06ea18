"""A server stream reset on its way (by Envoy when its replica vanished: RST_STREAM, no gRPC
status) reaches SDK callers as UNAVAILABLE, the code they reconnect on, not INTERNAL."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from optix.common.v1 import stream_pb2
from optix.marketdata.v1 import marketdata_service_pb2 as md
from optix_client import OptixClient, OptixError, StaticTokenCredentials, SyncOptixClient
from tests.support.h2_reset_server import resetting_server

HEARTBEAT = md.StreamQuotesResponse(heartbeat=stream_pb2.Heartbeat()).SerializeToString()
REQUEST = md.StreamQuotesRequest(symbols=["AAPL"])
TOKEN = StaticTokenCredentials("service-token")


def assert_reconnectable(error: OptixError) -> None:
    """The ending a caller reconnects on. (gRPC may drop a message that arrived with the reset,
    so the tests check the ending, not that the message came first.)"""
    assert error.code is grpc.StatusCode.UNAVAILABLE
    assert "reset" in error.message and "RST_STREAM" in error.message


async def test_async_stream_reset_mid_way_is_unavailable() -> None:
    async with (
        resetting_server(HEARTBEAT) as address,
        OptixClient(address, credentials=TOKEN) as client,
    ):
        received = []
        with pytest.raises(OptixError) as ended:
            async for message in client.marketdata.StreamQuotes(REQUEST):
                received.append(message)
    assert all(m.WhichOneof("payload") == "heartbeat" for m in received)
    assert_reconnectable(ended.value)


async def test_sync_stream_reset_mid_way_is_unavailable() -> None:
    def stream(address: str) -> tuple[list[md.StreamQuotesResponse], OptixError]:
        received = []
        with SyncOptixClient(address, credentials=TOKEN) as client:
            try:
                for message in client.marketdata.StreamQuotes(REQUEST):
                    received.append(message)
            except OptixError as error:
                return received, error
        raise AssertionError("the stream ended without an error")

    async with resetting_server(HEARTBEAT) as address:
        received, error = await asyncio.to_thread(stream, address)
    assert all(m.WhichOneof("payload") == "heartbeat" for m in received)
    assert_reconnectable(error)
