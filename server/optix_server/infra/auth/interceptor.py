"""The server interceptor that authenticates every RPC except an explicit public list."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import grpc
from grpc import aio

from optix_server.infra.auth.principal import Principal, principal_scope
from optix_server.infra.auth.revocation import SessionRevocations
from optix_server.infra.auth.tokens import TokenAuthority
from optix_server.infra.errors import Unauthenticated
from optix_server.infra.grpc_errors import to_grpc_status, to_rpc_status
from optix_server.infra.handlers import Behaviour, Handler, rewrap_handler

# Whole services anyone may call: operators probe health and list services without a token.
PUBLIC_SERVICE_PREFIXES: tuple[str, ...] = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)
_BEARER = "bearer "
_TOKEN_EXPIRED = Unauthenticated(
    "the access token expired during the stream; reconnect with a fresh token",
    reason="TOKEN_EXPIRED",
)


def bearer_token(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    """The token from a single `authorization: Bearer <token>` entry, else None."""
    values = [v for k, v in (metadata or ()) if k.lower() == "authorization"]
    # Several authorization headers are ambiguous: refuse rather than guess which one counts.
    if len(values) != 1 or not isinstance(values[0], str):
        return None
    value = values[0]
    if value[: len(_BEARER)].lower() != _BEARER:
        return None
    token = value[len(_BEARER) :].strip()
    return token or None


class AuthInterceptor(aio.ServerInterceptor):
    """Verifies the bearer token of each private RPC and exposes the caller via principal.py."""

    def __init__(
        self,
        authority: TokenAuthority,
        public_methods: frozenset[str] = frozenset(),
        public_prefixes: tuple[str, ...] = PUBLIC_SERVICE_PREFIXES,
        revocations: SessionRevocations | None = None,
    ) -> None:
        self._authority = authority
        self._public_methods = public_methods
        self._public_prefixes = public_prefixes
        self._revocations = revocations

    def is_public(self, method: str) -> bool:
        """Whether `method` may be called without a token."""
        return method in self._public_methods or method.startswith(self._public_prefixes)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        """Authenticate, then run the handler with the principal set (or fail UNAUTHENTICATED)."""
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        token = bearer_token(handler_call_details.invocation_metadata)
        if self.is_public(method):
            principal = self._try_verify(token)
            return _wrap(handler, principal, None)
        if token is None:
            return _wrap(handler, None, Unauthenticated("missing bearer token", reason="NO_TOKEN"))
        try:
            principal = self._authority.verify(token)
        except Unauthenticated as exc:
            return _wrap(handler, None, exc)
        if await self._session_ended(principal):
            ended = Unauthenticated("the session has ended; sign in again", reason="SESSION_ENDED")
            return _wrap(handler, None, ended)
        return _wrap(handler, principal, None, self._authority.seconds_left(principal))

    async def _session_ended(self, principal: Principal) -> bool:
        # Logout, password change and refresh-token reuse end a session at once, not only when
        # its access tokens expire.
        if self._revocations is None or not principal.session_id:
            return False
        return await self._revocations.is_revoked(principal.session_id)

    def _try_verify(self, token: str | None) -> Principal | None:
        # A public RPC still learns who calls it when a valid token is sent (e.g. GetJwks with
        # one); a bad token on a public RPC is simply ignored.
        if token is None:
            return None
        try:
            return self._authority.verify(token)
        except Unauthenticated:
            return None


async def _reject(context: aio.ServicerContext[Any, Any], error: Unauthenticated) -> None:
    status = to_grpc_status(to_rpc_status(error))
    await context.abort(status.code, status.details, status.trailing_metadata)


def _wrap_unary(
    behavior: Behaviour, principal: Principal | None, error: Unauthenticated | None
) -> Behaviour:
    async def unary(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
        if error is not None:
            await _reject(context, error)
        with principal_scope(principal):
            return await behavior(request, context)

    return unary


def _wrap_streaming(
    behavior: Behaviour,
    principal: Principal | None,
    error: Unauthenticated | None,
    seconds_left: float | None,
) -> Behaviour:
    if inspect.isasyncgenfunction(behavior):
        # A generator's items are written by grpc between our resumptions, where no deadline of
        # ours can end the call cleanly: its token is checked at the start only.
        async def generator(
            request: Any, context: aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            if error is not None:
                await _reject(context, error)
            with principal_scope(principal):
                async for item in behavior(request, context):
                    yield item

        return generator
    if seconds_left is None:
        return _wrap_unary(behavior, principal, error)

    async def stream(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
        # A stream outlives the check at its start: it ends when its token expires, so a
        # client cannot keep reading on an access token it could no longer use for a new call.
        if error is not None:
            await _reject(context, error)
        with principal_scope(principal):
            try:
                async with asyncio.timeout(seconds_left) as deadline:
                    return await behavior(request, context)
            except TimeoutError:
                if not deadline.expired():
                    raise
        await _reject(context, _TOKEN_EXPIRED)

    return stream


def _wrap(
    handler: Handler,
    principal: Principal | None,
    error: Unauthenticated | None,
    seconds_left: float | None = None,
) -> Handler:
    return rewrap_handler(
        handler,
        lambda behavior, streaming: (
            _wrap_streaming(behavior, principal, error, seconds_left)
            if streaming
            else _wrap_unary(behavior, principal, error)
        ),
    )
