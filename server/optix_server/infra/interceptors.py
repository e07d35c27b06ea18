"""Server interceptors shared by every service: request decoding and domain-error mapping."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from optix_server.infra import errors
from optix_server.infra.grpc_errors import (
    abort_with,
    internal_status,
    to_rpc_status,
)
from optix_server.infra.handlers import (
    Behaviour,
    Handler,
    HandlerInterceptor,
    method_of,
    rewrap_handler,
)
from optix_server.infra.logging import BurstLog, get_logger
from optix_server.infra.outages import dependency_outage

log = get_logger(__name__)


class MalformedRequest:
    """Stand-in for a request whose bytes did not decode; turned into INVALID_ARGUMENT."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _safe_deserializer(
    deserializer: Callable[[bytes], Any] | None,
) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def decode(data: bytes) -> Any:
        try:
            return deserializer(data)
        except (DecodeError, ValueError, TypeError) as exc:
            return MalformedRequest(type(exc).__name__)

    return decode


async def _abort(
    context: grpc.aio.ServicerContext[Any, Any],
    method: str,
    exc: BaseException,
    refused: BurstLog,
) -> None:
    if isinstance(exc, errors.OptixError):
        status = to_rpc_status(exc)
        if isinstance(exc, UndecodableRequest):
            refused.record(method=method)
    elif isinstance(exc, NotImplementedError):
        status = to_rpc_status(errors.Unimplemented(f"{method.lstrip('/')} is not implemented yet"))
    elif (outage := dependency_outage(exc)) is not None:
        # Retryable, and not the client's fault nor a bug: no traceback, nothing of the
        # dependency's address in the answer.
        log.warning("a call met a dependency outage", method=method, error=type(exc).__name__)
        status = to_rpc_status(outage)
    else:
        # Log the traceback for operators; the client learns nothing about internals.
        log.error("unhandled exception", method=method, exc_info=exc)
        status = internal_status()
    await abort_with(context, status)


class UndecodableRequest(errors.InvalidArgument):
    """A request message that is not a valid protobuf message of the method's request type."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            "the request message could not be decoded",
            [errors.FieldViolation("request", f"not a valid protobuf message ({reason})")],
        )


def _accepted(request: Any) -> Any:
    """A unary request, refused if it did not decode."""
    if isinstance(request, MalformedRequest):
        raise UndecodableRequest(request.reason)
    return request


async def _checked(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """The messages of a request stream, refusing the first one that did not decode."""
    async for request in requests:
        yield _accepted(request)


class ErrorMappingInterceptor(HandlerInterceptor):
    """Maps domain errors to statuses with details, undecodable requests to INVALID_ARGUMENT
    (for every method, reflection's included), and anything unexpected to a bare INTERNAL
    (logged, never leaked). Client mistakes are logged once per burst, not once per call."""

    def __init__(self) -> None:
        self._refused = BurstLog(log, "undecodable requests refused")

    async def wrap(self, handler: Handler, details: grpc.HandlerCallDetails) -> Handler:
        """Wrap the handler's behaviour and request decoder."""
        method = method_of(details)
        refused = self._refused
        return rewrap_handler(
            handler,
            lambda behaviour, streaming: (_wrap_stream if streaming else _wrap_unary)(
                method, behaviour, _checked if handler.request_streaming else _accepted, refused
            ),
            _safe_deserializer(handler.request_deserializer),
        )


def _wrap_unary(
    method: str, behaviour: Behaviour, accept: Callable[[Any], Any], refused: BurstLog
) -> Behaviour:
    async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            result = behaviour(accept(request), context)
            if inspect.isawaitable(result):
                result = await result
            return result
        except (grpc.aio.AbortError, grpc.aio.InternalError):
            # An abort already carries its status; a failed write to a client that went away
            # is grpc's to handle (it ends the call quietly).
            raise
        except Exception as exc:
            await _abort(context, method, exc, refused)

    return unary


def _wrap_stream(
    method: str, behaviour: Behaviour, accept: Callable[[Any], Any], refused: BurstLog
) -> Behaviour:
    if not inspect.isasyncgenfunction(behaviour):
        # A handler that writes through context.write stays a coroutine: wrapping it in a
        # generator would add a hop per message on the hottest path (quote fan-out).
        return _wrap_unary(method, behaviour, accept, refused)

    async def stream(
        request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        try:
            result = behaviour(accept(request), context)
            if inspect.isawaitable(result):
                result = await result
            if result is not None:
                try:
                    async for item in result:
                        yield item
                finally:
                    # Close the inner generator now (client gone, error) so its cleanup, such
                    # as leaving a quote feed, runs at once rather than at garbage collection.
                    close = getattr(result, "aclose", None)
                    if close is not None:
                        await close()
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort(context, method, exc, refused)

    return stream
