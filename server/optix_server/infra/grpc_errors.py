"""The one mapping from domain errors to gRPC status codes with google.rpc error details."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from optix_server.infra import errors

ERROR_DOMAIN = "optix.dev"

_CODES: Mapping[type[errors.OptixError], grpc.StatusCode] = MappingProxyType(
    {
        errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
        errors.NotFound: grpc.StatusCode.NOT_FOUND,
        errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
        errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
        errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
        errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
        errors.Aborted: grpc.StatusCode.ABORTED,
        errors.DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
        errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
        errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
        errors.Unimplemented: grpc.StatusCode.UNIMPLEMENTED,
    }
)


def status_code_for(error: errors.OptixError) -> grpc.StatusCode:
    """The canonical code for a domain error (UNKNOWN for an unmapped subclass)."""
    for cls in type(error).__mro__:
        if cls in _CODES:
            return _CODES[cls]
    return grpc.StatusCode.UNKNOWN


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def _duration(seconds: float) -> duration_pb2.Duration:
    value = duration_pb2.Duration()
    value.FromNanoseconds(int(seconds * 1e9))
    return value


def to_rpc_status(error: errors.OptixError) -> status_pb2.Status:
    """Build the google.rpc.Status (code, message, details) that represents a domain error."""
    code = status_code_for(error)
    details: list[any_pb2.Any] = []
    if error.reason:
        details.append(
            _pack(
                error_details_pb2.ErrorInfo(
                    reason=error.reason, domain=ERROR_DOMAIN, metadata=error.metadata
                )
            )
        )
    if isinstance(error, errors.InvalidArgument) and error.violations:
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=v.field, description=v.description
                        )
                        for v in error.violations
                    ]
                )
            )
        )
    if isinstance(error, errors.NotFound) and (error.resource_type or error.resource_name):
        details.append(
            _pack(
                error_details_pb2.ResourceInfo(
                    resource_type=error.resource_type, resource_name=error.resource_name
                )
            )
        )
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        details.append(
            _pack(error_details_pb2.RetryInfo(retry_delay=_duration(retry_after.total_seconds())))
        )
    return status_pb2.Status(code=code.value[0], message=error.message, details=details)


def internal_status(message: str = "internal error") -> status_pb2.Status:
    """A generic INTERNAL status that reveals nothing about the failure."""
    return status_pb2.Status(code=code_pb2.INTERNAL, message=message)


def to_grpc_status(status: status_pb2.Status) -> grpc.Status:
    """Convert a google.rpc.Status into the grpc.Status to abort with (details in trailers)."""
    converted: grpc.Status = rpc_status.to_status(status)
    return converted


async def abort_with(
    context: grpc.aio.ServicerContext[Any, Any], status: status_pb2.Status
) -> NoReturn:
    """End the call with `status` (its details in the trailers)."""
    grpc_status = to_grpc_status(status)
    await context.abort(
        grpc_status.code, grpc_status.details, trailing_metadata=grpc_status.trailing_metadata
    )
    raise AssertionError("context.abort returned")  # it always raises
