"""Domain errors map to canonical codes with google.rpc details, and nothing else leaks."""

from __future__ import annotations

from datetime import timedelta

import grpc
from google.rpc import error_details_pb2

from optix_server.infra import errors
from optix_server.infra.grpc_errors import status_code_for, to_rpc_status


def _unpack(status: object, kind: type) -> list:  # type: ignore[type-arg]
    found = []
    for detail in status.details:  # type: ignore[attr-defined]
        message = kind()
        if detail.Unpack(message):
            found.append(message)
    return found


def test_invalid_argument_carries_field_violations() -> None:
    error = errors.InvalidArgument(
        "bad", [errors.FieldViolation("email", "must be an email address")]
    )
    status = to_rpc_status(error)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    (bad_request,) = _unpack(status, error_details_pb2.BadRequest)
    assert bad_request.field_violations[0].field == "email"


def test_resource_exhausted_carries_retry_info() -> None:
    status = to_rpc_status(errors.ResourceExhausted("slow down", retry_after=timedelta(seconds=30)))
    (retry,) = _unpack(status, error_details_pb2.RetryInfo)
    assert retry.retry_delay.seconds == 30
    (info,) = _unpack(status, error_details_pb2.ErrorInfo)
    assert info.reason == "RESOURCE_EXHAUSTED"


def test_every_domain_error_has_a_canonical_code() -> None:
    expected = {
        errors.NotFound("x"): grpc.StatusCode.NOT_FOUND,
        errors.AlreadyExists("x"): grpc.StatusCode.ALREADY_EXISTS,
        errors.Unauthenticated("x"): grpc.StatusCode.UNAUTHENTICATED,
        errors.PermissionDenied("x"): grpc.StatusCode.PERMISSION_DENIED,
        errors.FailedPrecondition("x"): grpc.StatusCode.FAILED_PRECONDITION,
        errors.Aborted("x"): grpc.StatusCode.ABORTED,
        errors.Unavailable("x"): grpc.StatusCode.UNAVAILABLE,
        errors.Unimplemented("x"): grpc.StatusCode.UNIMPLEMENTED,
    }
    for error, code in expected.items():
        assert status_code_for(error) == code


def test_collector_raises_all_violations_at_once() -> None:
    collector = errors.ViolationCollector()
    collector.add("a", "bad a")
    collector.add("b", "bad b")
    try:
        collector.raise_if_any()
    except errors.InvalidArgument as error:
        assert [v.field for v in error.violations] == ["a", "b"]
    else:
        raise AssertionError("expected InvalidArgument")
