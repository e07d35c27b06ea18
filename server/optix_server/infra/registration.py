"""Adding a servicer to a grpc.aio server from its service descriptor, like the generated
`add_*Servicer_to_server` helper, except that chosen methods may answer with bytes already
encoded (a response built once and served many times is not serialised again per call)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

import grpc
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass


def serialize_or_pass(message: Message | bytes) -> bytes:
    """A response serializer that lets pre-encoded bytes through untouched."""
    if isinstance(message, bytes):
        return message
    return message.SerializeToString()


def _handler(
    method: MethodDescriptor, behaviour: Callable[..., Any], pre_encoded: bool
) -> grpc.RpcMethodHandler[Any, Any]:
    request: Any = GetMessageClass(method.input_type)
    response: Any = GetMessageClass(method.output_type)
    serializer = serialize_or_pass if pre_encoded else response.SerializeToString
    if method.client_streaming and method.server_streaming:
        build: Any = grpc.stream_stream_rpc_method_handler
    elif method.client_streaming:
        build = grpc.stream_unary_rpc_method_handler
    elif method.server_streaming:
        build = grpc.unary_stream_rpc_method_handler
    else:
        build = grpc.unary_unary_rpc_method_handler
    handler: grpc.RpcMethodHandler[Any, Any] = build(
        behaviour, request_deserializer=request.FromString, response_serializer=serializer
    )
    return handler


def register_service(
    server: grpc.aio.Server,
    servicer: object,
    service: ServiceDescriptor,
    *,
    pre_encoded: Collection[str] = (),
) -> None:
    """Add every method of `service` from `servicer`; the methods named in `pre_encoded` may
    return (or yield) encoded bytes as well as messages."""
    unknown = set(pre_encoded) - set(service.methods_by_name)
    if unknown:
        raise ValueError(f"{service.full_name} has no methods {sorted(unknown)}")
    handlers = {
        method.name: _handler(method, getattr(servicer, method.name), method.name in pre_encoded)
        for method in service.methods
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),)
    )
    server.add_registered_method_handlers(service.full_name, handlers)
