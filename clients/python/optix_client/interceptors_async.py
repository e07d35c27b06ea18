"""grpc.aio client interceptors: bearer token, default deadline, errors raised as OptixError."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc.aio import (
    ClientCallDetails,
    ClientInterceptor,
    Metadata,
    UnaryStreamCall,
    UnaryStreamClientInterceptor,
    UnaryUnaryClientInterceptor,
)

from optix_client.errors import from_rpc_error, from_stream_error
from optix_client.methods import PUBLIC_METHODS, method_name

TokenSource = Callable[[], Awaitable[str | None]]


class CallDecorator:
    """Adds `authorization` (except on public RPCs) and a deadline on unary calls without one."""

    def __init__(
        self, token: TokenSource | None, unary_timeout: float | None, user_agent: str
    ) -> None:
        self._token = token
        self._unary_timeout = unary_timeout
        self._user_agent = user_agent

    async def decorate(self, details: ClientCallDetails, *, unary: bool) -> ClientCallDetails:
        """The call details to send instead of `details`."""
        metadata = Metadata(*(details.metadata or ()))
        if self._token is not None and method_name(details.method) not in PUBLIC_METHODS:
            token = await self._token()
            if token and not metadata.get_all("authorization"):
                metadata["authorization"] = f"Bearer {token}"
        metadata["x-optix-client"] = self._user_agent
        timeout = details.timeout
        if timeout is None and unary:
            timeout = self._unary_timeout
        return ClientCallDetails(
            details.method, timeout, metadata, details.credentials, details.wait_for_ready
        )


class UnaryInterceptor(UnaryUnaryClientInterceptor):
    """Unary calls: decorated details; a failure raises OptixError."""

    def __init__(self, decorator: CallDecorator) -> None:
        self._decorator = decorator

    async def intercept_unary_unary(
        self,
        continuation: Callable[[ClientCallDetails, Any], Any],
        client_call_details: ClientCallDetails,
        request: Any,
    ) -> Any:
        """Send the call and return its response."""
        details = await self._decorator.decorate(client_call_details, unary=True)
        call = await continuation(details, request)
        try:
            return await call
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from None


class StreamInterceptor(UnaryStreamClientInterceptor):
    """Server streams: decorated details; a failure ends iteration with OptixError."""

    def __init__(self, decorator: CallDecorator) -> None:
        self._decorator = decorator

    async def intercept_unary_stream(
        self,
        continuation: Callable[[ClientCallDetails, Any], Any],
        client_call_details: ClientCallDetails,
        request: Any,
    ) -> AsyncIterator[Any]:
        """Start the stream; `cancel()` on the returned call still cancels it."""
        details = await self._decorator.decorate(client_call_details, unary=False)
        call: UnaryStreamCall[Any, Any] = await continuation(details, request)
        return _converted(call)


def interceptors(decorator: CallDecorator) -> list[ClientInterceptor]:
    """One interceptor per call kind: grpc.aio files each under a single kind only."""
    return [UnaryInterceptor(decorator), StreamInterceptor(decorator)]


async def _converted(call: UnaryStreamCall[Any, Any]) -> AsyncIterator[Any]:
    try:
        async for message in call:
            yield message
    except grpc.aio.AioRpcError as error:
        raise from_stream_error(error) from None
