"""Bounds on calls whose client does not bound them: the request message must arrive in time,
and a unary call without a deadline (or with a longer one) gets the server's maximum."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from optix_server.infra import errors
from optix_server.infra.handlers import Behaviour, Handler

_MISSING_MESSAGE = errors.InvalidArgument(
    "the call ended without its request message",
    [errors.FieldViolation("request", "a request message is required")],
)


class RequestDeadlineInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Serves every unary-request method as a request-streaming one that reads its single
    message under a timeout: grpc.aio would otherwise wait for it before any handler code runs,
    for as long as the client keeps the call open (forever without a deadline)."""

    def __init__(self, message_timeout_seconds: float, max_unary_deadline_seconds: float) -> None:
        self._message_timeout = message_timeout_seconds
        self._max_unary = max_unary_deadline_seconds

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        """Turn a unary-request handler into one that reads its request under a deadline."""
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_streaming:
            return handler
        decode, encode = handler.request_deserializer, handler.response_serializer
        if handler.unary_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self._unary(handler.unary_unary), decode, encode
            )
        assert handler.unary_stream is not None
        return grpc.stream_stream_rpc_method_handler(
            self._server_stream(handler.unary_stream), decode, encode
        )

    async def _first_message(self, requests: AsyncIterator[Any]) -> Any:
        try:
            async with asyncio.timeout(self._message_timeout):
                async for request in requests:
                    return request
        except TimeoutError:
            raise errors.DeadlineExceeded(
                f"the request message did not arrive within {self._message_timeout:g} s"
            ) from None
        raise _MISSING_MESSAGE

    def _unary(self, behaviour: Behaviour) -> Behaviour:
        async def unary(
            requests: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, Any]
        ) -> Any:
            remaining = context.time_remaining()
            # A client deadline within the maximum is grpc's to enforce; otherwise ours.
            limited = remaining is None or remaining > self._max_unary
            request = await self._first_message(requests)
            try:
                async with asyncio.timeout(self._max_unary if limited else None):
                    result = behaviour(request, context)
                    return await result if inspect.isawaitable(result) else result
            except TimeoutError:
                raise errors.DeadlineExceeded(
                    f"the call took longer than the server's {self._max_unary:g} s limit"
                ) from None

        return unary

    def _server_stream(self, behaviour: Behaviour) -> Behaviour:
        if inspect.isasyncgenfunction(behaviour):

            async def generator(
                requests: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                request = await self._first_message(requests)
                items = behaviour(request, context)
                try:
                    async for item in items:
                        yield item
                finally:
                    # Close it now (client gone, error), so its cleanup runs at once.
                    await items.aclose()

            return generator

        # Handlers that write through context.write stay coroutines (the quote fan-out's path).
        async def writer(
            requests: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, Any]
        ) -> Any:
            request = await self._first_message(requests)
            result = behaviour(request, context)
            return await result if inspect.isawaitable(result) else result

        return writer
