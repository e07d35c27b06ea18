"""W3C trace context: each call's trace id and span id, from an incoming `traceparent` header
(or a new trace), kept for the call so the access log writes them and the service-to-service
calls it makes carry them on."""

from __future__ import annotations

import contextvars
import random
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import grpc
from grpc import aio

TRACEPARENT = "traceparent"
# version 00: 32 hex trace id, 16 hex parent (span) id, 2 hex flags; lower-case only.
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_INVALID_TRACE_ID = "0" * 32
_INVALID_SPAN_ID = "0" * 16
# A trace started here: sampled, since the access log records it.
NEW_TRACE_FLAGS = "01"


class TraceContext:
    """One call's place in a trace: the trace it belongs to (None: a new one), the caller's
    span and flags when it sent them, and the call's own span."""

    __slots__ = ("_span_id", "_trace_id", "flags", "parent_id")

    def __init__(
        self,
        trace_id: str | None = None,
        parent_id: str | None = None,
        flags: str = NEW_TRACE_FLAGS,
    ) -> None:
        self._trace_id = trace_id
        self._span_id: str | None = None
        self.parent_id = parent_id
        self.flags = flags

    # Ids are drawn when first asked for: most calls are never logged and call no other
    # service, so they never pay for them.
    @property
    def trace_id(self) -> str:
        """The trace's id, 32 hex digits."""
        trace_id = self._trace_id
        if trace_id is None:
            trace_id = self._trace_id = new_trace_id()
        return trace_id

    @property
    def span_id(self) -> str:
        """This call's span id, 16 hex digits."""
        span_id = self._span_id
        if span_id is None:
            span_id = self._span_id = new_span_id()
        return span_id

    def traceparent(self) -> str:
        """The `traceparent` of a call made from this one (this span is its parent)."""
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"


def parse_traceparent(value: object) -> tuple[str, str, str] | None:
    """(trace id, parent span id, flags) of a well-formed version-00 `traceparent`, else None
    (an all-zero id is malformed too)."""
    if not isinstance(value, str):
        return None
    match = _TRACEPARENT.fullmatch(value)
    if match is None:
        return None
    trace_id, parent_id, flags = match.groups()
    if trace_id == _INVALID_TRACE_ID or parent_id == _INVALID_SPAN_ID:
        return None
    return trace_id, parent_id, flags


def new_span_id() -> str:
    """A random, non-zero 16-hex-digit span id."""
    return f"{random.getrandbits(64) or 1:016x}"


def new_trace_id() -> str:
    """A random, non-zero 32-hex-digit trace id."""
    return f"{random.getrandbits(128) or 1:032x}"


def trace_from_metadata(metadata: Iterable[tuple[str, Any]] | None) -> TraceContext:
    """A new span for a call with this metadata: in the caller's trace when it sent exactly one
    well-formed `traceparent`, else in a new trace (a malformed one is ignored)."""
    header: Any = None
    for key, value in metadata or ():
        if key == TRACEPARENT:
            if header is not None:
                return TraceContext()  # two: ambiguous
            header = value
    parsed = None if header is None else parse_traceparent(header)
    if parsed is None:
        return TraceContext()
    return TraceContext(*parsed)


_CURRENT: contextvars.ContextVar[TraceContext | None] = contextvars.ContextVar(
    "optix_trace", default=None
)


def current_trace() -> TraceContext | None:
    """The trace context of the call being handled, None outside any call."""
    return _CURRENT.get()


class TracingInterceptor(aio.ServerInterceptor):  # type: ignore[misc]
    """Outermost: gives each call its span (see trace_from_metadata) for its whole life."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        """Set the call's trace context, then resolve its handler."""
        # Set here, not around the behaviour: grpc.aio runs the interceptors and then the
        # behaviour in the call's own task, so the value lasts the call and no other call sees
        # it; the handler is left as it is (nothing to rebuild per call).
        _CURRENT.set(trace_from_metadata(handler_call_details.invocation_metadata))  # type: ignore[attr-defined]
        return await continuation(handler_call_details)


def _with_traceparent(details: aio.ClientCallDetails) -> aio.ClientCallDetails:
    trace = _CURRENT.get()
    if trace is None:
        # Not made on behalf of a call (a background task): the callee starts a trace.
        return details
    existing = [(k, v) for k, v in (details.metadata or ()) if k != TRACEPARENT]
    return aio.ClientCallDetails(
        method=details.method,
        timeout=details.timeout,
        metadata=aio.Metadata(*existing, (TRACEPARENT, trace.traceparent())),
        credentials=details.credentials,
        wait_for_ready=details.wait_for_ready,
    )


class TraceUnaryUnary(aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Carries the current call's trace context on unary calls to other services."""

    async def intercept_unary_unary(
        self,
        continuation: Callable[..., Any],
        client_call_details: aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        """Forward the call with `traceparent` naming the current span as its parent."""
        return await continuation(_with_traceparent(client_call_details), request)


class TraceUnaryStream(aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    """Carries the current call's trace context on server-streaming calls to other services."""

    async def intercept_unary_stream(
        self,
        continuation: Callable[..., Any],
        client_call_details: aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        """Forward the call with `traceparent` naming the current span as its parent."""
        return await continuation(_with_traceparent(client_call_details), request)


def trace_channel_interceptors() -> list[aio.ClientInterceptor]:
    """Interceptors for a channel to another service, passing the trace context on."""
    return [TraceUnaryUnary(), TraceUnaryStream()]
