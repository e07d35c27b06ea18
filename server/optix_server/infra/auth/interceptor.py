"""The server interceptor that authenticates every RPC except an explicit public list."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import Any

import grpc
from grpc import aio

from optix_server.infra.auth.principal import Principal, principal_scope
from optix_server.infra.auth.revocation import SessionRevocations
from optix_server.infra.auth.session_watch import SessionWatch
from optix_server.infra.auth.tokens import TokenAuthority
from optix_server.infra.errors import OptixError, Unauthenticated
from optix_server.infra.grpc_errors import to_grpc_status, to_rpc_status
from optix_server.infra.handlers import (
    Behaviour,
    Handler,
    HandlerInterceptor,
    method_of,
    rewrap_handler,
)
from optix_server.infra.logging import get_logger
from optix_server.infra.outages import dependency_outage

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
_SESSION_ENDED = Unauthenticated("the session has ended; sign in again", reason="SESSION_ENDED")

log = get_logger(__name__)


def bearer_token(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    """The token from a single `authorization: Bearer <token>` entry, else None."""
    values = [v for k, v in (metadata or ()) if k.lower() == "authorization"]
    # Several authorization headers are ambiguous: refuse rather than guess which one counts.
    if len(values) != 1 or not isinstance(values[0], str):
        return None
    value = values[0]
    if value[: len(_BEARER)].lower() != _BEARER:
        return None
    # RFC 6750: "Bearer" 1*SP token. Only the separating spaces go; anything after the token
    # stays part of it, so the strict compact-JWS check refuses a token with bytes appended.
    token = value[len(_BEARER) :].lstrip(" ")
    return token or None


class AuthInterceptor(HandlerInterceptor):
    """Verifies the bearer token of each private RPC and exposes the caller via principal.py."""

    def __init__(
        self,
        authority: TokenAuthority,
        public_methods: frozenset[str] = frozenset(),
        public_prefixes: tuple[str, ...] = PUBLIC_SERVICE_PREFIXES,
        revocations: SessionRevocations | None = None,
        session_watch: SessionWatch | None = None,
    ) -> None:
        self._authority = authority
        self._session_watch = session_watch
        self._public_methods = public_methods
        self._public_prefixes = public_prefixes
        self._revocations = revocations

    def is_public(self, method: str) -> bool:
        """Whether `method` may be called without a token."""
        return method in self._public_methods or method.startswith(self._public_prefixes)

    async def wrap(self, handler: Handler, details: grpc.HandlerCallDetails) -> Handler:
        """Authenticate, then run the handler with the principal set (or fail UNAUTHENTICATED)."""
        method = method_of(details)
        token = bearer_token(details.invocation_metadata)  # type: ignore[attr-defined]
        if self.is_public(method):
            principal = self._try_verify(token)
            return _wrap(handler, principal, None)
        if token is None:
            return _wrap(handler, None, Unauthenticated("missing bearer token", reason="NO_TOKEN"))
        try:
            principal = self._authority.verify(token)
        except Unauthenticated as exc:
            return _wrap(handler, None, exc)
        try:
            ended = await self._session_ended(principal)
        except Exception as exc:
            # The deny-list cannot be read (Redis down): refuse, retryably, rather than let a
            # possibly ended session in or answer UNKNOWN with the driver's internals.
            outage = dependency_outage(exc)
            if outage is None:
                raise
            log.warning("could not check whether a session ended", error=type(exc).__name__)
            return _wrap(handler, None, outage)
        if ended:
            return _wrap(handler, None, _SESSION_ENDED)
        # Only streams outlive their start; unary calls need no ending armed.
        ending = (
            _StreamEnding(
                self._authority.seconds_left(principal),
                principal,
                self._session_watch,
                lambda: self._session_ended(principal),
            )
            if handler.response_streaming
            else None
        )
        return _wrap(handler, principal, None, ending)

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


async def _reject(context: aio.ServicerContext[Any, Any], error: OptixError) -> None:
    status = to_grpc_status(to_rpc_status(error))
    await context.abort(status.code, status.details, status.trailing_metadata)


def _wrap_unary(
    behavior: Behaviour, principal: Principal | None, error: OptixError | None
) -> Behaviour:
    async def unary(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
        if error is not None:
            await _reject(context, error)
        with principal_scope(principal):
            return await behavior(request, context)

    return unary


class _StreamEnding:
    """When a stream must end although its handler would go on: its token expires, or its
    sign-in session ends (logout, password change, refresh-token reuse) on any replica."""

    def __init__(
        self,
        seconds_left: float | None,
        principal: Principal,
        watch: SessionWatch | None,
        session_ended: Callable[[], Awaitable[bool]],
    ) -> None:
        self.seconds_left = seconds_left
        self.session_id = principal.session_id if watch is not None else ""
        self.watch = watch
        self.session_ended = session_ended

    @contextlib.contextmanager
    def armed(self) -> Iterator[list[Unauthenticated]]:
        """For the duration of the block, cancel the current task at the first ending and
        record why in the yielded list (empty while the stream may go on)."""
        task = asyncio.current_task()
        assert task is not None
        why: list[Unauthenticated] = []

        def end(error: Unauthenticated) -> None:
            if not why:
                why.append(error)
                task.cancel()

        loop = asyncio.get_running_loop()
        timer = (
            loop.call_later(max(self.seconds_left, 0.0), end, _TOKEN_EXPIRED)
            if self.seconds_left is not None
            else None
        )
        unwatch = (
            self.watch.watch(self.session_id, lambda: end(_SESSION_ENDED))
            if self.watch is not None and self.session_id
            else None
        )
        try:
            yield why
        finally:
            if timer is not None:
                timer.cancel()
            if unwatch is not None:
                unwatch()


def _wrap_streaming(
    behavior: Behaviour,
    principal: Principal | None,
    error: OptixError | None,
    ending: _StreamEnding | None,
) -> Behaviour:
    if inspect.isasyncgenfunction(behavior):
        # A generator's items are written by grpc between our resumptions, where we cannot end
        # the call cleanly: its token is checked at the start only.
        async def generator(
            request: Any, context: aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            if error is not None:
                await _reject(context, error)
            with principal_scope(principal):
                async for item in behavior(request, context):
                    yield item

        return generator
    if ending is None:
        return _wrap_unary(behavior, principal, error)

    async def stream(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
        # A stream outlives the checks at its start: it ends when its token expires or its
        # session ends, so a client cannot keep reading on access it would no longer get.
        if error is not None:
            await _reject(context, error)
        with principal_scope(principal), ending.armed() as why:
            try:
                # Checked again once armed: a session ended between the check before the
                # handler and the arming was announced to no watcher, but it is on the list.
                if not await ending.session_ended():
                    return await behavior(request, context)
                why.append(_SESSION_ENDED)
            except asyncio.CancelledError:
                if not why:
                    raise  # the client went away, or the server is stopping
                current = asyncio.current_task()
                assert current is not None
                current.uncancel()
        await _reject(context, why[0])

    return stream


def _wrap(
    handler: Handler,
    principal: Principal | None,
    error: OptixError | None,
    ending: _StreamEnding | None = None,
) -> Handler:
    return rewrap_handler(
        handler,
        lambda behavior, streaming: (
            _wrap_streaming(behavior, principal, error, ending)
            if streaming
            else _wrap_unary(behavior, principal, error)
        ),
    )
