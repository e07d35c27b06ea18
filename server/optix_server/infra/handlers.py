"""Rebuilding a gRPC method handler around a wrapped behaviour: the one place the server
interceptors (error mapping, authentication) do it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import grpc

Behaviour: TypeAlias = Callable[..., Any]
# A string alias: grpc.RpcMethodHandler is generic only in the type stubs.
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"


def rewrap_handler(
    handler: Handler,
    wrap: Callable[[Behaviour, bool], Behaviour],
    request_deserializer: Callable[[bytes], Any] | None = None,
) -> Handler:
    """A copy of `handler` whose behaviour is `wrap(behaviour, response_streaming)`, optionally
    with another request decoder; the RPC kind and response encoder stay as they were."""
    decode = request_deserializer or handler.request_deserializer
    encode = handler.response_serializer
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(wrap(handler.unary_unary, False), decode, encode)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            wrap(handler.unary_stream, True), decode, encode
        )
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(
            wrap(handler.stream_unary, False), decode, encode
        )
    assert handler.stream_stream is not None
    return grpc.stream_stream_rpc_method_handler(wrap(handler.stream_stream, True), decode, encode)


class HandlerInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """A server interceptor that rebuilds the handler each call resolves to (an unknown method
    resolves to none and is left to grpc): subclasses say how, in `wrap`."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        """Resolve the handler, then let `wrap` rebuild it."""
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        return await self.wrap(handler, handler_call_details)

    async def wrap(self, handler: Handler, details: grpc.HandlerCallDetails) -> Handler:
        """The handler to serve this call with."""
        raise NotImplementedError


def method_of(details: grpc.HandlerCallDetails) -> str:
    """The full method path of a call, "/package.Service/Method"."""
    method: str = details.method  # type: ignore[attr-defined]
    return method


def status_after(
    context: grpc.aio.ServicerContext[Any, Any], exc: BaseException | None
) -> grpc.StatusCode:
    """The status a call ended with, from how its behaviour ended (`exc`: what it raised)."""
    if exc is None or isinstance(exc, grpc.aio.AbortError):
        # An abort (and a handler's set_code) leaves the status on the context.
        code = context.code()
        return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.OK
    if isinstance(exc, asyncio.CancelledError | GeneratorExit):
        # The client went away (or the server is stopping mid-call).
        return grpc.StatusCode.CANCELLED
    # What grpc answers for an exception no interceptor mapped.
    return grpc.StatusCode.UNKNOWN
