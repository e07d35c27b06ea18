"""Expecting failures from calls through the Python SDK (which raises OptixError)."""

from __future__ import annotations

from collections.abc import Awaitable

import grpc
from google.rpc import error_details_pb2

from optix_client.errors import OptixError


async def expect(code: grpc.StatusCode, call: Awaitable[object]) -> OptixError:
    """Await `call`, which must fail with `code`; the error."""
    try:
        await call
    except OptixError as error:
        assert error.code == code, f"expected {code.name}, got {error}"
        return error
    raise AssertionError(f"expected {code.name}, the call succeeded")


def violations(error: OptixError) -> list[str]:
    """The field paths of the error's BadRequest violations, in order, repeats kept."""
    bad = error.detail(error_details_pb2.BadRequest)
    return [] if bad is None else [v.field for v in bad.field_violations]


async def invalid(call: Awaitable[object], *fields: str) -> OptixError:
    """Await `call`, which must be INVALID_ARGUMENT naming (at least) each of `fields`."""
    error = await expect(grpc.StatusCode.INVALID_ARGUMENT, call)
    named = violations(error)
    for path in fields:
        assert path in named, f"no violation of {path!r} in {named} ({error})"
    return error
