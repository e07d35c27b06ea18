"""Rebuilding a gRPC method handler around a wrapped behaviour: the one place the server
interceptors (error mapping, authentication) do it."""

from __future__ import annotations

from collections.abc import Callable
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
