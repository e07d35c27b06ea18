"""Typed clients for calling other services: a generated stub on a channel to the service's
address (configured, or this process) that carries the calling slice's service identity, so no
slice imports another's modules and every internal call is authenticated, and the trace context
of the call it is made for (W3C `traceparent`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import grpc

from optix_server.infra.auth.clock import Clock
from optix_server.infra.auth.service_identity import (
    ServiceTokenSource,
    service_channel_interceptors,
)
from optix_server.infra.auth.tokens import TokenAuthority
from optix_server.infra.settings import Settings
from optix_server.infra.tracing import trace_channel_interceptors

Stub = TypeVar("Stub")
# Calls to another service never wait longer than this, whatever the caller's deadline.
MAX_INTERNAL_CALL_SECONDS = 5.0
# The share of a caller's remaining time the calls it makes may use.
ANSWER_SHARE = 0.8


class ServiceClients:
    """Channels to the other services, one per (service, caller), opened on first use."""

    def __init__(self, settings: Settings, tokens: TokenAuthority, clock: Clock) -> None:
        self._settings = settings
        self._tokens = tokens
        self._clock = clock
        self._channels: dict[tuple[str, str], grpc.aio.Channel] = {}
        self._local_port: int | None = None

    def serving_on(self, port: int) -> None:
        """The port this process serves on: services hosted here are reached there (asked for
        port 0, the real one is known only once the server is bound)."""
        self._local_port = port

    def address_of(self, service: str) -> str:
        """Where `service` is reached: its configured address, else this process."""
        configured = self._settings.service_addresses.get(service)
        if configured:
            return configured
        return f"{self._settings.host}:{self._local_port or self._settings.port}"

    def stub(
        self, service: str, stub_type: Callable[[grpc.aio.Channel], Stub], *, caller: str
    ) -> Stub:
        """A `stub_type` for `service`, whose calls carry `caller`'s service identity."""
        key = (service, caller)
        channel = self._channels.get(key)
        if channel is None:
            source = ServiceTokenSource(self._tokens, caller, self._clock)
            channel = grpc.aio.insecure_channel(
                self.address_of(service),
                # The service identity, and the trace of the call being served (if any).
                interceptors=[*service_channel_interceptors(source), *trace_channel_interceptors()],
                options=[("grpc.max_receive_message_length", self._settings.max_message_bytes)],
            )
            self._channels[key] = channel
        return stub_type(channel)

    async def close(self) -> None:
        """Close every channel."""
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close()


def deadline_from(
    context: grpc.aio.ServicerContext[Any, Any] | None, cap: float = MAX_INTERNAL_CALL_SECONDS
) -> float:
    """The timeout of a call made on behalf of `context`'s call: most of its remaining time
    (a fifth is left to answer with what the call has, say a list without quotes), at most
    `cap` (a call without a deadline of its own still bounds the calls it makes)."""
    remaining = context.time_remaining() if context is not None else None
    if remaining is None:
        return cap
    return max(0.0, min(remaining * ANSWER_SHARE, cap))
