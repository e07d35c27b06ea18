"""What every service slice receives (Dependencies) and what it gives back (ServiceModule)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc

from optix_server.infra.auth.clock import Clock
from optix_server.infra.auth.revocation import SessionRevocations
from optix_server.infra.auth.tokens import TokenAuthority
from optix_server.infra.cache import Cache
from optix_server.infra.clients import ServiceClients
from optix_server.infra.db import Database
from optix_server.infra.lifecycle import Lifecycle
from optix_server.infra.metrics import Metrics
from optix_server.infra.pubsub import PubSub
from optix_server.infra.settings import Settings


@dataclass
class Dependencies:
    """Shared infrastructure handed to each slice's `create_module` (no globals anywhere)."""

    settings: Settings
    database: Database
    cache: Cache
    pubsub: PubSub
    lifecycle: Lifecycle
    # The time source for tokens, sessions and limits (tests pass a manual one).
    clock: Clock
    # Signs and verifies tokens: one per process, shared by the auth interceptor and the user
    # service, so the keys are loaded once and verified tokens are remembered in one place.
    tokens: TokenAuthority
    # Typed stubs for calling the other services (in this process or at their addresses).
    clients: ServiceClients
    # Ended sign-in sessions (logout etc.): written by the user service, read by every
    # process's authentication; durable in the database, mirrored in memory.
    revocations: SessionRevocations
    # Prometheus metrics of this process (its own registry); slices record into it.
    metrics: Metrics = field(default_factory=Metrics)


@dataclass
class ServiceModule:
    """One hosted gRPC service: how to add it to a server, which methods are public, its hooks."""

    # Short name, as in `optix serve --services`: "user", "marketdata", ...
    name: str
    # Fully-qualified proto service name, for health and reflection: "optix.user.v1.UserService".
    full_name: str
    # Adds the servicer to a grpc.aio server.
    register: Callable[[grpc.aio.Server], None]
    # Full method paths ("/optix.user.v1.UserService/Login") callable without a token.
    public_methods: frozenset[str] = frozenset()
    # Server interceptors this slice contributes (e.g. authentication), outermost first.
    interceptors: tuple[grpc.aio.ServerInterceptor, ...] = ()
    # Awaited after the server started / before it stops (start background tasks, drain them).
    on_start: Callable[[], Awaitable[None]] | None = None
    on_stop: Callable[[], Awaitable[None]] | None = None
    extra: dict[str, object] = field(default_factory=dict)
