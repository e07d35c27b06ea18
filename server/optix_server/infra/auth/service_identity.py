"""Service identity for internal calls: a short-lived signed service token on every request."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from grpc import aio

from optix_server.infra.auth.clock import Clock
from optix_server.infra.auth.tokens import IssuedToken, TokenAuthority

# Renew this long before expiry so a token never expires in flight.
_RENEW_MARGIN = timedelta(seconds=30)


class ServiceTokenSource:
    """Mints and caches this service's identity token, renewing it before it expires."""

    def __init__(self, authority: TokenAuthority, service_name: str, clock: Clock) -> None:
        self._authority = authority
        self._service_name = service_name
        self._clock = clock
        self._current: IssuedToken | None = None

    def token(self) -> str:
        """A valid service token (minting a new one when the cached one is about to expire)."""
        current = self._current
        if current is None or current.expire_time - _RENEW_MARGIN <= self._clock.now():
            current = self._authority.issue_service_token(self._service_name)
            self._current = current
        return current.token

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """Call metadata carrying the service token."""
        return (("authorization", f"Bearer {self.token()}"),)


def _with_auth(details: aio.ClientCallDetails, source: ServiceTokenSource) -> aio.ClientCallDetails:
    existing = [(k, v) for k, v in (details.metadata or ()) if str(k).lower() != "authorization"]
    return aio.ClientCallDetails(
        method=details.method,
        timeout=details.timeout,
        metadata=aio.Metadata(*existing, *source.metadata()),
        credentials=details.credentials,
        wait_for_ready=details.wait_for_ready,
    )


class ServiceAuthUnaryUnary(aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Adds the service token to unary calls on an internal channel."""

    def __init__(self, source: ServiceTokenSource) -> None:
        self._source = source

    async def intercept_unary_unary(
        self,
        continuation: Callable[..., Any],
        client_call_details: aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        """Forward the call with `authorization: Bearer <service token>`."""
        return await continuation(_with_auth(client_call_details, self._source), request)


class ServiceAuthUnaryStream(aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    """Adds the service token to server-streaming calls on an internal channel."""

    def __init__(self, source: ServiceTokenSource) -> None:
        self._source = source

    async def intercept_unary_stream(
        self,
        continuation: Callable[..., Any],
        client_call_details: aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        """Forward the call with `authorization: Bearer <service token>`."""
        return await continuation(_with_auth(client_call_details, self._source), request)


def service_channel_interceptors(source: ServiceTokenSource) -> list[aio.ClientInterceptor]:
    """Interceptors for `grpc.aio.insecure_channel(..., interceptors=...)` to another service."""
    return [ServiceAuthUnaryUnary(source), ServiceAuthUnaryStream(source)]
