"""Bounds on calls whose client does not bound them: the request message must arrive in time,
and a unary call without a deadline (or with a longer one) gets the server's maximum."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from typing import Any

import grpc

from optix_server.infra import errors
from optix_server.infra.grpc_errors import abort_with, to_rpc_status
from optix_server.infra.handlers import Behaviour, Handler, HandlerInterceptor, method_of
from optix_server.infra.logging import BurstLog, get_logger

log = get_logger(__name__)

_MISSING_MESSAGE = errors.InvalidArgument(
    "the call ended without its request message",
    [errors.FieldViolation("request", "a request message is required")],
)
Context = grpc.aio.ServicerContext[Any, Any]


class Watchdog:
    """Cancels the tasks of calls past their due time. One sweep for all calls, every `tick`
    seconds, instead of a timer per call: the limits are seconds long, and a per-call timer
    cost a fifth of a small unary call's throughput."""

    def __init__(self, tick_seconds: float) -> None:
        self._tick = tick_seconds
        self._due: dict[asyncio.Task[Any], tuple[float, str]] = {}
        self._expired: dict[asyncio.Task[Any], str] = {}
        self._sweeper: asyncio.Task[None] | None = None

    def watch(self, task: asyncio.Task[Any], due: float, reason: str) -> None:
        """Cancel `task` at loop time `due` (replacing an earlier due time), saying `reason`."""
        self._due[task] = (due, reason)
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    def unwatch(self, task: asyncio.Task[Any]) -> None:
        """Forget `task`."""
        self._due.pop(task, None)

    def expired(self, task: asyncio.Task[Any]) -> str | None:
        """Why the watchdog cancelled `task` (None: it did not), forgetting it."""
        return self._expired.pop(task, None)

    async def _sweep(self) -> None:
        # Runs while calls are watched; a quiet server has no task waking up.
        loop = asyncio.get_running_loop()
        try:
            while self._due:
                await asyncio.sleep(self._tick)
                now = loop.time()
                for task, (due, reason) in list(self._due.items()):
                    if due <= now:
                        del self._due[task]
                        self._expired[task] = reason
                        task.cancel()
        finally:
            self._sweeper = None


class RequestDeadlineInterceptor(HandlerInterceptor):
    """Serves every unary-request method as a request-streaming one that reads its single
    message under a time limit: grpc.aio would otherwise wait for it before any handler code
    runs, for as long as the client keeps the call open (forever without a deadline). Outermost,
    so the handlers it wraps are already error-mapped; its own refusals use the same mapping."""

    def __init__(self, message_timeout_seconds: float, max_unary_deadline_seconds: float) -> None:
        self._message_timeout = message_timeout_seconds
        self._max_unary = max_unary_deadline_seconds
        self._watchdog = Watchdog(tick_seconds=min(0.5, message_timeout_seconds / 4))
        self._ended = BurstLog(log, "calls ended at the server's time limit")
        self._no_message = (
            f"the request message did not arrive within {message_timeout_seconds:g} s"
        )
        self._too_long = (
            f"the call took longer than the server's {max_unary_deadline_seconds:g} s limit"
        )

    async def wrap(self, handler: Handler, details: grpc.HandlerCallDetails) -> Handler:
        """Turn a unary-request handler into one that reads its request under a time limit."""
        if handler.request_streaming:
            return handler
        method = method_of(details)
        decode, encode = handler.request_deserializer, handler.response_serializer
        if handler.unary_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self._unary(method, handler.unary_unary), decode, encode
            )
        assert handler.unary_stream is not None
        return grpc.stream_stream_rpc_method_handler(
            self._server_stream(method, handler.unary_stream), decode, encode
        )

    async def _read_request(self, context: Context, task: asyncio.Task[Any]) -> Any:
        """The call's one request message, read under the message timeout (still watched)."""
        loop = asyncio.get_running_loop()
        self._watchdog.watch(task, loop.time() + self._message_timeout, self._no_message)
        request = await context.read()
        if request is grpc.aio.EOF:
            self._watchdog.unwatch(task)
            await abort_with(context, to_rpc_status(_MISSING_MESSAGE))
        return request

    async def _ended_by_watchdog(
        self, context: Context, task: asyncio.Task[Any], method: str
    ) -> None:
        """After a CancelledError: end the call DEADLINE_EXCEEDED if the watchdog cancelled it;
        any other cancellation (the client went away, shutdown) goes on."""
        reason = self._watchdog.expired(task)
        if reason is None:
            raise asyncio.CancelledError
        task.uncancel()
        self._ended.record(method=method)
        await abort_with(context, to_rpc_status(errors.DeadlineExceeded(reason)))

    def _unary(self, method: str, behaviour: Behaviour) -> Behaviour:
        async def unary(requests: AsyncIterator[Any], context: Context) -> Any:
            task = asyncio.current_task()
            assert task is not None
            try:
                request = await self._read_request(context, task)
                remaining = context.time_remaining()
                if remaining is None or remaining > self._max_unary:
                    due = asyncio.get_running_loop().time() + self._max_unary
                    self._watchdog.watch(task, due, self._too_long)
                else:
                    # A client deadline within the maximum is grpc's to enforce.
                    self._watchdog.unwatch(task)
                result = behaviour(request, context)
                return await result if inspect.isawaitable(result) else result
            except asyncio.CancelledError:
                await self._ended_by_watchdog(context, task, method)
            finally:
                self._watchdog.unwatch(task)

        return unary

    def _server_stream(self, method: str, behaviour: Behaviour) -> Behaviour:
        async def first_request(context: Context, task: asyncio.Task[Any]) -> Any:
            try:
                request = await self._read_request(context, task)
            except asyncio.CancelledError:
                await self._ended_by_watchdog(context, task, method)
            finally:
                # Only the request is timed: a stream lasts as long as its client wants.
                self._watchdog.unwatch(task)
            return request

        if inspect.isasyncgenfunction(behaviour):

            async def generator(
                requests: AsyncIterator[Any], context: Context
            ) -> AsyncIterator[Any]:
                task = asyncio.current_task()
                assert task is not None
                items = behaviour(await first_request(context, task), context)
                try:
                    async for item in items:
                        yield item
                finally:
                    # Close it now (client gone, error), so its cleanup runs at once.
                    await items.aclose()

            return generator

        # Handlers that write through context.write stay coroutines (the quote fan-out's path).
        async def writer(requests: AsyncIterator[Any], context: Context) -> Any:
            task = asyncio.current_task()
            assert task is not None
            result = behaviour(await first_request(context, task), context)
            return await result if inspect.isawaitable(result) else result

        return writer
