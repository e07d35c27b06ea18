"""The access log: one structured line per RPC (method, status, duration, peer, caller, trace),
written when the call ends. It never logs request fields, metadata or tokens."""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import random
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import structlog

from optix_server.infra.auth.principal import Principal, PrincipalKind, optional_principal
from optix_server.infra.handlers import (
    Behaviour,
    Handler,
    HandlerInterceptor,
    method_of,
    rewrap_handler,
    status_after,
)
from optix_server.infra.logging import get_logger
from optix_server.infra.peer import TrustedProxies, client_address
from optix_server.infra.tracing import current_trace

ACCESS_LOG_MODES = ("all", "errors", "off")
Context = grpc.aio.ServicerContext[Any, Any]


class _Call:
    """What the outer wrapper learns from inside the call: who the caller turned out to be."""

    __slots__ = ("principal",)

    def __init__(self) -> None:
        self.principal: Principal | None = None


# Per-request state like principal.py's: each RPC runs in its own task and sees only its own
# value. The principal is scoped to the auth wrapper, inside ours, so it is handed out here.
_CURRENT_CALL: contextvars.ContextVar[_Call | None] = contextvars.ContextVar(
    "optix_access_log_call", default=None
)


class AccessLog:
    """Decides which ended calls get a line (mode, sampling of OK calls) and writes it."""

    def __init__(
        self,
        mode: str = "all",
        sample: float = 1.0,
        *,
        proxies: TrustedProxies | None = None,
        logger: structlog.stdlib.BoundLogger | None = None,
        chance: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if mode not in ACCESS_LOG_MODES:
            raise ValueError(f"access log mode must be one of {ACCESS_LOG_MODES}, got {mode!r}")
        self.mode = mode
        self.sample = sample
        self._proxies = proxies or TrustedProxies()
        self._log = logger or get_logger("optix.access")
        self._chance = chance
        self.clock = clock

    @property
    def enabled(self) -> bool:
        """Whether any call can be logged (when not, no interceptor is installed at all)."""
        return self.mode != "off"

    def ended(
        self, method: str, code: grpc.StatusCode, started: float, context: Context, call: _Call
    ) -> None:
        """Log one ended call, unless the mode or the sample leaves it out."""
        if code is grpc.StatusCode.OK and (
            self.mode != "all" or (self.sample < 1.0 and self._chance() >= self.sample)
        ):
            return
        fields: dict[str, Any] = {
            "method": method,
            # Not "code": the redaction step hides that key (TOTP codes).
            "status": code.name,
            "duration_ms": round((self.clock() - started) * 1000.0, 3),
            "peer": context.peer(),
            # Behind the edge the peer is the edge: the client as per-address limits count it.
            "client": client_address(context.peer(), context.invocation_metadata(), self._proxies),
        }
        principal = call.principal
        if principal is not None:
            key = "user" if principal.kind is PrincipalKind.USER else "service"
            fields[key] = principal.subject
        trace = current_trace()
        if trace is not None:
            fields["trace_id"] = trace.trace_id
            fields["span_id"] = trace.span_id
            if trace.parent_id is not None:
                fields["parent_span_id"] = trace.parent_id
        self._log.info("rpc", **fields)


class AccessLogInterceptor(HandlerInterceptor):
    """Outermost but for tracing: times each call and logs it when it ends (a stream when it
    ends)."""

    def __init__(self, access_log: AccessLog) -> None:
        self._access_log = access_log

    async def wrap(self, handler: Handler, details: grpc.HandlerCallDetails) -> Handler:
        """Wrap the handler's behaviour so its end is logged."""
        method = method_of(details)
        access_log = self._access_log
        return rewrap_handler(handler, lambda behaviour, _s: _logged(access_log, method, behaviour))


def _logged(access_log: AccessLog, method: str, behaviour: Behaviour) -> Behaviour:
    clock = access_log.clock
    if inspect.isasyncgenfunction(behaviour):

        async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
            started = clock()
            call = _Call()
            token = _CURRENT_CALL.set(call)
            failure: BaseException | None = None
            try:
                async for item in behaviour(request, context):
                    yield item
            except BaseException as exc:
                failure = exc
                raise
            finally:
                # A generator may be finalised in another context; the task ends anyway.
                with contextlib.suppress(ValueError):
                    _CURRENT_CALL.reset(token)
                access_log.ended(method, status_after(context, failure), started, context, call)

        return stream

    async def unary(request: Any, context: Context) -> Any:
        started = clock()
        call = _Call()
        token = _CURRENT_CALL.set(call)
        failure: BaseException | None = None
        try:
            result = behaviour(request, context)
            if inspect.isawaitable(result):
                result = await result
            return result
        except BaseException as exc:
            failure = exc
            raise
        finally:
            _CURRENT_CALL.reset(token)
            access_log.ended(method, status_after(context, failure), started, context, call)

    return unary


class CallerInterceptor(HandlerInterceptor):
    """Innermost of the shared ones (inside authentication): tells the access log who called."""

    async def wrap(self, handler: Handler, details: grpc.HandlerCallDetails) -> Handler:
        """Wrap the handler's behaviour so it notes the principal before running."""
        return rewrap_handler(handler, lambda behaviour, _s: _noting_caller(behaviour))


def _noting_caller(behaviour: Behaviour) -> Behaviour:
    if inspect.isasyncgenfunction(behaviour):

        async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
            _note_caller()
            async for item in behaviour(request, context):
                yield item

        return stream

    def unary(request: Any, context: Context) -> Any:
        # Not a coroutine itself: grpc or the outer wrapper awaits what the behaviour returns.
        _note_caller()
        return behaviour(request, context)

    return unary


def _note_caller() -> None:
    call = _CURRENT_CALL.get()
    if call is not None:
        call.principal = optional_principal()
