"""The error-mapping interceptor around the kinds of handler behaviour a servicer can have."""

from __future__ import annotations

import inspect
from types import SimpleNamespace
from typing import Any

import grpc
import pytest

from optix_server.infra import errors
from optix_server.infra.handlers import Behaviour
from optix_server.infra.interceptors import ErrorMappingInterceptor

METHOD = "/optix.test.v1.TestService/Stream"


class RecordingContext:
    """Just enough of a servicer context to see whether (and how) the interceptor aborts."""

    def __init__(self) -> None:
        self.aborted: list[grpc.StatusCode] = []

    async def abort(self, code: grpc.StatusCode, details: str, trailing_metadata: Any = ()) -> None:
        """Record the status instead of ending a real call."""
        self.aborted.append(code)
        raise grpc.aio.AbortError()


async def _wrapped_stream(behaviour: Behaviour) -> Behaviour:
    handler: grpc.RpcMethodHandler[Any, Any] = grpc.unary_stream_rpc_method_handler(behaviour)

    async def continuation(_: grpc.HandlerCallDetails) -> Any:
        return handler

    wrapped = await ErrorMappingInterceptor().intercept_service(
        continuation, SimpleNamespace(method=METHOD)
    )
    assert wrapped is not None and wrapped.unary_stream is not None
    return wrapped.unary_stream


async def test_a_writing_stream_handler_stays_a_coroutine() -> None:
    async def writes(request: Any, context: Any) -> None:
        return None

    wrapped = await _wrapped_stream(writes)
    # A generator wrapper would add a hop per message of every stream.
    assert inspect.iscoroutinefunction(wrapped)
    assert not inspect.isasyncgenfunction(wrapped)


async def test_domain_errors_of_a_writing_stream_handler_are_mapped() -> None:
    async def fails(request: Any, context: Any) -> None:
        raise errors.Unavailable("server is shutting down; reconnect to resume")

    context = RecordingContext()
    with pytest.raises(grpc.aio.AbortError):
        await (await _wrapped_stream(fails))(object(), context)
    assert context.aborted == [grpc.StatusCode.UNAVAILABLE]


async def test_a_failed_write_to_a_departed_client_is_left_to_grpc() -> None:
    async def peer_gone(request: Any, context: Any) -> None:
        # What context.write raises when the connection closed under it.
        raise grpc.aio.InternalError('Failed "execute_batch"')

    context = RecordingContext()
    with pytest.raises(grpc.aio.InternalError):
        await (await _wrapped_stream(peer_gone))(object(), context)
    # Not logged as a bug nor turned into INTERNAL: grpc ends a cancelled call quietly.
    assert context.aborted == []


async def test_generator_stream_handlers_still_map_errors() -> None:
    async def yields_then_fails(request: Any, context: Any) -> Any:
        yield b"first"
        raise errors.NotFound("gone")

    context = RecordingContext()
    received = []
    with pytest.raises(grpc.aio.AbortError):
        async for item in (await _wrapped_stream(yields_then_fails))(object(), context):
            received.append(item)
    assert received == [b"first"]
    assert context.aborted == [grpc.StatusCode.NOT_FOUND]
