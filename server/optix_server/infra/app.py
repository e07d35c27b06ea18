"""Builds and runs the grpc.aio server hosting any subset of the services, with health,
reflection, shared interceptors and graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from redis.asyncio import Redis

from optix_server.infra.access_log import AccessLog, AccessLogInterceptor, CallerInterceptor
from optix_server.infra.auth.clock import Clock, SystemClock
from optix_server.infra.auth.factory import (
    build_auth_interceptor,
    build_session_revocations,
    build_token_authority,
)
from optix_server.infra.auth.session_watch import SessionWatch
from optix_server.infra.cache import Cache, InMemoryCache, RedisCache
from optix_server.infra.clients import ServiceClients
from optix_server.infra.db import Database
from optix_server.infra.files import private_dir
from optix_server.infra.gc_policy import apply_gc_policy
from optix_server.infra.health import DrainableHealth
from optix_server.infra.interceptors import ErrorMappingInterceptor
from optix_server.infra.lifecycle import Lifecycle
from optix_server.infra.logging import get_logger
from optix_server.infra.metrics import Metrics, MetricsInterceptor, MetricsServer
from optix_server.infra.module import Dependencies, ServiceModule
from optix_server.infra.pubsub import InMemoryPubSub, PubSub, RedisPubSub
from optix_server.infra.request_deadlines import RequestDeadlineInterceptor
from optix_server.infra.settings import Settings
from optix_server.infra.tracing import TracingInterceptor

log = get_logger(__name__)

# Request metadata a call may carry (bearer tokens are refused past 4 KiB by authentication).
METADATA_LIMIT_BYTES = 64 * 1024
HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name


def build_dependencies(settings: Settings, clock: Clock | None = None) -> Dependencies:
    """Create the shared infrastructure the settings ask for (Redis when configured)."""
    clock = clock or SystemClock()
    # var/ holds the database, keys and the pepper: only its owner may list it (also one made
    # before its files were created private).
    private_dir(settings.var_dir)
    cache: Cache
    pubsub: PubSub
    metrics = Metrics()
    if settings.redis_url:
        cache = RedisCache(
            Redis.from_url(settings.redis_url),
            settings.redis_prefix,
            on_error=metrics.redis_errors_of("cache"),
        )
        pubsub = RedisPubSub(
            Redis.from_url(settings.redis_url),
            settings.redis_prefix,
            on_error=metrics.redis_errors_of("pubsub"),
        )
    else:
        cache = InMemoryCache()
        pubsub = InMemoryPubSub()
    tokens = build_token_authority(settings, clock)
    database = Database(settings.database_url)
    metrics.watch_database(database)
    return Dependencies(
        settings=settings,
        database=database,
        cache=cache,
        pubsub=pubsub,
        lifecycle=Lifecycle(),
        clock=clock,
        tokens=tokens,
        clients=ServiceClients(settings, tokens, clock),
        revocations=build_session_revocations(settings, database, pubsub, clock),
        metrics=metrics,
    )


async def close_dependencies(deps: Dependencies) -> None:
    """Release every connection the dependencies hold."""
    await deps.clients.close()
    await deps.cache.close()
    await deps.pubsub.close()
    await deps.database.dispose()


def _interceptors(
    settings: Settings,
    auth: grpc.aio.ServerInterceptor,
    access_log: AccessLog,
    modules: Sequence[ServiceModule],
    metrics: Metrics | None = None,
) -> list[grpc.aio.ServerInterceptor]:
    """Outermost first: tracing (the call's trace context, for everything inside), the access
    log (it times every call and sees its final status), the metrics (when served; inside the
    access log, so a call's line is written after its metrics are), the request deadlines
    (they read the request of handlers already error-mapped), error mapping, authentication
    (it guards every hosted service, whether or not the user service runs in this process),
    then the slices' own."""
    interceptors: list[grpc.aio.ServerInterceptor] = [
        RequestDeadlineInterceptor(
            settings.request_message_timeout_seconds, settings.max_unary_deadline_seconds
        ),
        ErrorMappingInterceptor(),
        auth,
    ]
    if metrics is not None:
        # Off (no OPTIX_METRICS_PORT) means not installed, like the access log.
        interceptors.insert(0, MetricsInterceptor(metrics))
    if access_log.enabled:
        # Off means not installed: the hot path pays nothing. The caller is only known
        # inside authentication, so a second, inner interceptor passes it out.
        interceptors = [AccessLogInterceptor(access_log), *interceptors, CallerInterceptor()]
    interceptors.insert(0, TracingInterceptor())
    for module in modules:
        interceptors.extend(module.interceptors)
    return interceptors


def _server_options(settings: Settings) -> list[tuple[str, int]]:
    """grpc core's channel arguments for the serving port."""
    return [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        # Without this a second server on a taken port would silently share it.
        ("grpc.so_reuseport", 0),
        # No HPACK dynamic table for peers' headers: a proxy multiplexes many clients onto
        # one connection, and one client's malformed header, kept in that shared table, made
        # grpc core refuse later clients' calls (edge poisoning).
        ("grpc.http2.hpack_table_size.decoder", 0),
        # Soft and hard limit equal (between them grpc refuses at random), above the edge's
        # 32 KiB so the edge answers first; the answer names no header.
        ("grpc.max_metadata_size", METADATA_LIMIT_BYTES),
        ("grpc.absolute_max_metadata_size", METADATA_LIMIT_BYTES),
        # Keepalive pings let the server notice phones that vanished mid-stream.
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
    ]


class OptixServer:
    """A grpc.aio server hosting `modules`; start() binds, stop() drains gracefully."""

    def __init__(
        self,
        deps: Dependencies,
        modules: Sequence[ServiceModule],
        health_servicer: DrainableHealth | None = None,
        access_log: AccessLog | None = None,
    ) -> None:
        self.deps = deps
        self.modules = list(modules)
        self.health = health_servicer or DrainableHealth()
        # Ends open streams of a session that ends (logout etc.), whichever replica ended it.
        revocations = deps.revocations
        self.session_watch = SessionWatch(deps.pubsub, revocations.ended_among)
        auth = build_auth_interceptor(
            deps.tokens,
            (method for module in self.modules for method in module.public_methods),
            revocations,
            self.session_watch,
        )
        settings = deps.settings
        access_log = access_log or AccessLog(
            settings.access_log, settings.access_log_sample, proxies=settings.trusted_proxies
        )
        served = settings.metrics_port is not None
        self.server = grpc.aio.server(
            interceptors=_interceptors(
                settings, auth, access_log, self.modules, deps.metrics if served else None
            ),
            options=_server_options(settings),
        )
        self.port = 0
        self.metrics_server = (
            MetricsServer(deps.metrics, settings.metrics_bind_host, settings.metrics_port)
            if settings.metrics_port is not None
            else None
        )
        self._stopping = False
        self._stopped = asyncio.Event()
        # Set to cut the drain window short (a second SIGTERM, a test).
        self._drained = asyncio.Event()

    @property
    def metrics_port(self) -> int | None:
        """The port metrics are served on once started (None when not served)."""
        return self.metrics_server.port if self.metrics_server is not None else None

    @property
    def service_names(self) -> list[str]:
        """Fully-qualified names of the hosted optix services."""
        return [m.full_name for m in self.modules]

    async def start(self) -> int:
        """Register everything, bind, serve, mark each service SERVING (the overall "" status
        last); returns the port."""
        for module in self.modules:
            module.register(self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            [*self.service_names, HEALTH_SERVICE, reflection.SERVICE_NAME], self.server
        )
        address = self.deps.settings.listen_address
        try:
            self.port = self.server.add_insecure_port(address)
        except RuntimeError:  # grpc's way of saying the bind failed
            self.port = 0
        if self.port == 0:
            raise OSError(f"cannot listen on {address}: address in use or not available")
        self.deps.clients.serving_on(self.port)
        # Endings known before the first call is authenticated.
        await self.deps.revocations.start()
        await self.session_watch.start()
        # Every name has a status before the port accepts: a probe asking for a service while
        # on_start runs hears NOT_SERVING (wait), not NOT_FOUND (misconfigured).
        for name in [*self.service_names, ""]:
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.server.start()
        for module in self.modules:
            if module.on_start is not None:
                await module.on_start()
        for name in self.service_names:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        # Overall last: "" SERVING promises that every hosted service is.
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        if self.metrics_server is not None:
            await self.metrics_server.start()
        log.info(
            "serving",
            address=f"{self.deps.settings.host}:{self.port}",
            services=[m.name for m in self.modules],
        )
        return self.port

    def end_drain(self) -> None:
        """Stop draining now (stop() goes on to refuse new calls)."""
        self._drained.set()

    async def stop(self, grace: float | None = None) -> None:
        """Graceful stop: health NOT_SERVING; keep serving through the drain window while the
        edge stops routing here; then refuse new calls, end streams (Health.Watch too) with
        UNAVAILABLE, let in-flight calls finish within `grace` s, and stop each module's
        background work (after the calls that may still use it)."""
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        settings = self.deps.settings
        grace = settings.shutdown_grace_seconds if grace is None else grace
        await self.health.enter_graceful_shutdown()
        if settings.drain_seconds > 0 and not self._drained.is_set():
            log.info("draining: NOT_SERVING, still serving", seconds=settings.drain_seconds)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(settings.drain_seconds):
                    await self._drained.wait()
        self.health.close_watches()
        self.deps.lifecycle.begin_shutdown()
        await self.server.stop(grace)
        await self.session_watch.stop()
        await self.deps.revocations.stop()
        for module in reversed(self.modules):
            if module.on_stop is not None:
                try:
                    await module.on_stop()
                except Exception:
                    log.exception("on_stop failed", service=module.name)
        if self.metrics_server is not None:
            await self.metrics_server.stop()
        self._stopped.set()
        log.info("stopped")

    async def wait_stopped(self) -> None:
        """Wait until stop() has finished."""
        await self._stopped.wait()


async def serve(settings: Settings, modules: Sequence[ServiceModule], deps: Dependencies) -> None:
    """Serve until SIGINT/SIGTERM, then stop gracefully and release resources."""
    server = OptixServer(deps, modules)
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop_requested.set)
    try:
        await server.start()
        apply_gc_policy(settings.gc_young_threshold)
        await stop_requested.wait()
        log.info("shutdown requested")
        # A second signal while draining: stop draining, go on stopping.
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, server.end_drain)
    finally:
        await server.stop()
        await close_dependencies(deps)
