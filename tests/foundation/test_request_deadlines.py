"""Calls the client leaves unbounded, on a real grpc.aio server with the shared interceptors:
a request message that never comes, a unary call without a deadline, undecodable bytes."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2

from optix_server.infra.interceptors import ErrorMappingInterceptor
from optix_server.infra.logging import BurstLog
from optix_server.infra.request_deadlines import RequestDeadlineInterceptor
from tests.support.rawgrpc import raw_call

MESSAGE_TIMEOUT_S = 0.3
MAX_UNARY_S = 0.6
# Generous bounds on how late an answer may come on a loaded machine; the point is "not never".
LATE_S = 5.0
SERVICE = "optix.test.v1.Deadlines"
Unary = grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]
Streaming = grpc.aio.UnaryStreamMultiCallable[bytes, bytes]


def _frame(payload: bytes) -> bytes:
    return struct.pack(">BI", 0, len(payload)) + payload


async def _echo(request: health_pb2.HealthCheckRequest, context: Any) -> Any:
    return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


async def _hang(request: health_pb2.HealthCheckRequest, context: Any) -> Any:
    await asyncio.Event().wait()


async def _count(request: health_pb2.HealthCheckRequest, context: Any) -> AsyncIterator[Any]:
    for _ in range(3):
        yield health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


async def _slow(request: health_pb2.HealthCheckRequest, context: Any) -> AsyncIterator[Any]:
    # A stream whose second message comes later than any unary call may take.
    yield health_pb2.HealthCheckResponse()
    await asyncio.sleep(MAX_UNARY_S * 1.5)
    yield health_pb2.HealthCheckResponse()


async def _write(request: health_pb2.HealthCheckRequest, context: Any) -> None:
    for _ in range(2):
        await context.write(health_pb2.HealthCheckResponse())


def _handlers() -> grpc.GenericRpcHandler:
    decode = health_pb2.HealthCheckRequest.FromString
    encode = health_pb2.HealthCheckResponse.SerializeToString
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Echo": grpc.unary_unary_rpc_method_handler(_echo, decode, encode),
            "Hang": grpc.unary_unary_rpc_method_handler(_hang, decode, encode),
            "Count": grpc.unary_stream_rpc_method_handler(_count, decode, encode),
            "Write": grpc.unary_stream_rpc_method_handler(_write, decode, encode),
            "Slow": grpc.unary_stream_rpc_method_handler(_slow, decode, encode),
        },
    )


@pytest.fixture
async def address() -> AsyncIterator[str]:
    server = grpc.aio.server(
        interceptors=[
            RequestDeadlineInterceptor(MESSAGE_TIMEOUT_S, MAX_UNARY_S),
            ErrorMappingInterceptor(),
        ]
    )
    server.add_generic_rpc_handlers((_handlers(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


async def _raw(address: str, method: str, body: bytes, **kwargs: Any) -> Any:
    return await asyncio.to_thread(raw_call, address, f"/{SERVICE}/{method}", body, **kwargs)


async def test_well_formed_calls_are_served_as_before(address: str) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        echo: Unary = channel.unary_unary(f"/{SERVICE}/Echo")
        count: Streaming = channel.unary_stream(f"/{SERVICE}/Count")
        write: Streaming = channel.unary_stream(f"/{SERVICE}/Write")
        request = health_pb2.HealthCheckRequest().SerializeToString()
        assert await echo(request) == b"\x08\x01"
        assert len([item async for item in count(request)]) == 3
        assert len([item async for item in write(request)]) == 2


@pytest.mark.parametrize("method", ["Echo", "Count"])
async def test_a_request_message_that_never_comes_ends_the_call(address: str, method: str) -> None:
    # No deadline from the client, headers sent, the message never.
    reply = await _raw(address, method, b"", end_stream=False, timeout=LATE_S + 5)
    assert reply.grpc_status == grpc.StatusCode.DEADLINE_EXCEEDED.value[0], reply
    assert "did not arrive" in reply.grpc_message
    assert MESSAGE_TIMEOUT_S <= reply.seconds < MESSAGE_TIMEOUT_S + LATE_S


@pytest.mark.parametrize("method", ["Echo", "Write"])
async def test_a_call_ended_without_its_message_is_invalid(address: str, method: str) -> None:
    reply = await _raw(address, method, b"")
    assert reply.grpc_status == grpc.StatusCode.INVALID_ARGUMENT.value[0], reply
    assert reply.seconds < LATE_S


@pytest.mark.parametrize("method", ["Echo", "Count", "Write"])
async def test_undecodable_bytes_are_invalid_argument(address: str, method: str) -> None:
    reply = await _raw(address, method, _frame(b"\xff\xff\xff"))
    assert reply.grpc_status == grpc.StatusCode.INVALID_ARGUMENT.value[0], reply
    assert "could not be decoded" in reply.grpc_message


async def test_a_unary_call_without_a_deadline_gets_the_servers_maximum(address: str) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        hang: Unary = channel.unary_unary(f"/{SERVICE}/Hang")
        request = health_pb2.HealthCheckRequest().SerializeToString()
        for timeout in (None, 60.0):  # none at all, or longer than the server allows
            with pytest.raises(grpc.aio.AioRpcError) as ended:
                await asyncio.wait_for(hang(request, timeout=timeout), MAX_UNARY_S + LATE_S)
            assert ended.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
            assert "server's" in (ended.value.details() or "")
        # A shorter deadline of the client's own is grpc's to enforce, as always.
        with pytest.raises(grpc.aio.AioRpcError) as own:
            await hang(request, timeout=0.1)
        assert own.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        assert "server's" not in (own.value.details() or "")


async def test_a_streaming_call_is_not_cut_by_the_unary_maximum(address: str) -> None:
    # Only a stream's request message is timed, not the stream.
    async with grpc.aio.insecure_channel(address) as channel:
        slow: Streaming = channel.unary_stream(f"/{SERVICE}/Slow")
        request = health_pb2.HealthCheckRequest().SerializeToString()
        assert len([item async for item in slow(request)]) == 2


def test_a_burst_of_refusals_is_one_log_line() -> None:
    lines: list[dict[str, Any]] = []

    class Recorder:
        def warning(self, event: str, **fields: Any) -> None:
            lines.append({"event": event, **fields})

    now = [100.0]
    burst = BurstLog(Recorder(), "client errors refused", 10.0, lambda: now[0])  # type: ignore[arg-type]
    for _ in range(50):
        burst.record(method="/a")
    assert lines == [{"event": "client errors refused", "occurrences": 1, "method": "/a"}]
    now[0] += 10.0
    burst.record(method="/b")
    assert lines[-1] == {"event": "client errors refused", "occurrences": 50, "method": "/b"}
