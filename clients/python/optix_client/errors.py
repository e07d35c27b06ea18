"""One exception type for every failed call, carrying the code, message and google.rpc details."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2

STATUS_DETAILS_KEY = "grpc-status-details-bin"
_M = TypeVar("_M", bound=Message)

# The google.rpc detail messages a server may attach; anything else stays a packed Any.
_DETAIL_TYPES: tuple[type[Message], ...] = (
    error_details_pb2.BadRequest,
    error_details_pb2.RetryInfo,
    error_details_pb2.ErrorInfo,
    error_details_pb2.QuotaFailure,
    error_details_pb2.PreconditionFailure,
    error_details_pb2.ResourceInfo,
    error_details_pb2.RequestInfo,
    error_details_pb2.DebugInfo,
    error_details_pb2.Help,
    error_details_pb2.LocalizedMessage,
)


class OptixError(Exception):
    """A failed OPTIX call: gRPC status code, message and decoded google.rpc error details."""

    def __init__(
        self, code: grpc.StatusCode, message: str, details: Sequence[Message] = ()
    ) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.details = tuple(details)

    def detail(self, kind: type[_M]) -> _M | None:
        """The first attached detail of type `kind` (e.g. error_details_pb2.BadRequest), if any."""
        for item in self.details:
            if isinstance(item, kind):
                return item
        return None

    @property
    def field_violations(self) -> dict[str, str]:
        """BadRequest field violations as {field path: description}."""
        bad = self.detail(error_details_pb2.BadRequest)
        return {} if bad is None else {v.field: v.description for v in bad.field_violations}

    @property
    def retry_delay(self) -> timedelta | None:
        """How long the server asks the caller to wait before retrying (RetryInfo)."""
        info = self.detail(error_details_pb2.RetryInfo)
        if info is None or not info.HasField("retry_delay"):
            return None
        delay: timedelta = info.retry_delay.ToTimedelta()
        return delay

    @property
    def reason(self) -> str | None:
        """The machine-readable ErrorInfo reason, e.g. "INVALID_CREDENTIALS"."""
        info = self.detail(error_details_pb2.ErrorInfo)
        return None if info is None else info.reason


def _unpack(packed: any_pb2.Any) -> Message:
    for kind in _DETAIL_TYPES:
        if packed.TypeName() == kind.DESCRIPTOR.full_name:
            message = kind()
            packed.Unpack(message)
            return message
    return packed


def decode_details(metadata: Iterable[Any] | None) -> tuple[Message, ...]:
    """Decode the google.rpc.Status details from trailing metadata (empty when absent/corrupt)."""
    # Sync metadata items are (key, value) tuples; aio's Metadata iterates the same pairs.
    for key, value in metadata or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            try:
                status = status_pb2.Status.FromString(value)
            except DecodeError:
                return ()
            return tuple(_unpack(item) for item in status.details)
    return ()


def from_rpc_error(error: grpc.RpcError) -> OptixError:
    """Convert a grpc (sync or aio) RpcError into an OptixError."""
    # Both grpc.Call (sync) and grpc.aio.AioRpcError expose code(), details(), trailing_metadata().
    code: grpc.StatusCode = error.code()  # type: ignore[attr-defined]
    message: str = error.details() or ""  # type: ignore[attr-defined]
    trailers = error.trailing_metadata()  # type: ignore[attr-defined]
    return OptixError(code, message, decode_details(trailers))


# How gRPC core reports an HTTP/2 stream reset with no gRPC status, e.g. by Envoy when the replica
# behind it vanished mid-stream ("Received RST_STREAM with error code 2").
_RESET_MARKER = "RST_STREAM"


def from_stream_error(error: grpc.RpcError) -> OptixError:
    """Convert the RpcError that ended a server stream. A stream reset on the way (by a proxy or
    the network: no server gave a status) is UNAVAILABLE, so a caller reconnects as it does
    after a server's shutdown, rather than INTERNAL, which says a server failed the call."""
    converted = from_rpc_error(error)
    if converted.code is grpc.StatusCode.INTERNAL and _RESET_MARKER in converted.message:
        return OptixError(
            grpc.StatusCode.UNAVAILABLE,
            f"the stream was reset on its way ({converted.message}); reconnect",
            converted.details,
        )
    return converted
