"""Reading the status a failed call carries: google.rpc details decoded in one place."""

from __future__ import annotations

from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

M = TypeVar("M", bound=Message)


def rpc_status(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    """The google.rpc.Status carried in an error's trailers (empty when none)."""
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            return status_pb2.Status.FromString(value)
    return status_pb2.Status()


def detail(error: grpc.aio.AioRpcError, kind: type[M]) -> M | None:
    """The first detail of type `kind` in an error, if any."""
    for packed in rpc_status(error).details:
        message = kind()
        if packed.Unpack(message):
            return message
    return None


def violated_fields(error: grpc.aio.AioRpcError) -> set[str]:
    """The field paths named by the error's BadRequest detail."""
    bad = detail(error, error_details_pb2.BadRequest)
    return {v.field for v in bad.field_violations} if bad else set()


async def expect_error(code: grpc.StatusCode, call: Any) -> grpc.aio.AioRpcError:
    """Await `call` and return the AioRpcError it fails with, checking its code."""
    try:
        await call
    except grpc.aio.AioRpcError as error:
        assert error.code() == code, (error.code(), error.details())
        return error
    raise AssertionError(f"expected {code}, the call succeeded")
