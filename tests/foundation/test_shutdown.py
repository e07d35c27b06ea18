"""Graceful shutdown: health turns NOT_SERVING and open streams end with UNAVAILABLE."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from optix.alert.v1 import alert_service_pb2, alert_service_pb2_grpc
from optix_server.infra.app import OptixServer, build_dependencies, close_dependencies
from optix_server.infra.db import migrate
from optix_server.infra.lifecycle import Lifecycle
from optix_server.infra.module import ServiceModule
from tests.support.backends import fresh_database_url
from tests.support.server import make_settings, service_metadata


class _ForeverStream(alert_service_pb2_grpc.AlertServiceServicer):  # type: ignore[misc]
    """A stream that never ends on its own, like a quiet live-events stream."""

    def __init__(self, lifecycle: Lifecycle, started: asyncio.Event) -> None:
        self._lifecycle = lifecycle
        self._started = started

    async def StreamAlertEvents(
        self,
        request: alert_service_pb2.StreamAlertEventsRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[alert_service_pb2.StreamAlertEventsResponse]:
        self._started.set()
        await self._lifecycle.race(asyncio.Event().wait())
        yield alert_service_pb2.StreamAlertEventsResponse()


def _forever_stream_module(lifecycle: Lifecycle, started: asyncio.Event) -> ServiceModule:
    """An alert slice whose only RPC is a stream that never ends on its own."""
    return ServiceModule(
        name="alert",
        full_name="optix.alert.v1.AlertService",
        register=lambda server: alert_service_pb2_grpc.add_AlertServiceServicer_to_server(
            _ForeverStream(lifecycle, started),  # type: ignore[abstract]
            server,
        ),
    )


async def test_stop_ends_streams_with_unavailable_and_health_not_serving(tmp_path: Path) -> None:
    async with fresh_database_url("sqlite", tmp_path) as url:
        deps = build_dependencies(make_settings(url, tmp_path))
        await migrate(deps.database)
        started = asyncio.Event()
        server = OptixServer(deps, [_forever_stream_module(deps.lifecycle, started)])
        port = await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = alert_service_pb2_grpc.AlertServiceStub(channel)
                health = health_pb2_grpc.HealthStub(channel)
                watch = health.Watch(
                    health_pb2.HealthCheckRequest(service="optix.alert.v1.AlertService")
                )
                first = await watch.read()
                assert first.status == health_pb2.HealthCheckResponse.SERVING
                stream = stub.StreamAlertEvents(
                    alert_service_pb2.StreamAlertEventsRequest(),
                    metadata=service_metadata(deps),
                )
                reader = asyncio.ensure_future(stream.read())
                await asyncio.wait_for(started.wait(), 10)
                stopping = asyncio.ensure_future(server.stop(grace=5))
                second = await asyncio.wait_for(watch.read(), 10)
                assert second.status == health_pb2.HealthCheckResponse.NOT_SERVING
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await asyncio.wait_for(reader, 10)
                assert info.value.code() == grpc.StatusCode.UNAVAILABLE
                assert "reconnect" in (info.value.details() or "")
                await asyncio.wait_for(stopping, 10)
        finally:
            await server.stop(0)
            await close_dependencies(deps)


async def test_the_drain_window_serves_while_not_serving_and_watches_do_not_hold_stop(
    tmp_path: Path,
) -> None:
    # A drain window and a grace far longer than the test's waits: the drain ends only when
    # told (as a second SIGTERM does), and a Watch left open must not make stop() use the grace.
    async with fresh_database_url("sqlite", tmp_path) as url:
        deps = build_dependencies(make_settings(url, tmp_path, drain_seconds=600.0))
        await migrate(deps.database)
        started = asyncio.Event()
        server = OptixServer(deps, [_forever_stream_module(deps.lifecycle, started)])
        port = await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = alert_service_pb2_grpc.AlertServiceStub(channel)
                health = health_pb2_grpc.HealthStub(channel)
                watch = health.Watch(health_pb2.HealthCheckRequest(service=""))
                assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
                stream = stub.StreamAlertEvents(
                    alert_service_pb2.StreamAlertEventsRequest(),
                    metadata=service_metadata(deps),
                )
                reader = asyncio.ensure_future(stream.read())
                await asyncio.wait_for(started.wait(), 10)
                stopping = asyncio.ensure_future(server.stop(grace=600))
                second = await asyncio.wait_for(watch.read(), 10)
                assert second.status == health_pb2.HealthCheckResponse.NOT_SERVING
                # Draining: still answering, and streams keep running.
                check = await health.Check(health_pb2.HealthCheckRequest(service=""))
                assert check.status == health_pb2.HealthCheckResponse.NOT_SERVING
                assert not reader.done() and not stopping.done()
                server.end_drain()
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await asyncio.wait_for(reader, 10)
                assert info.value.code() == grpc.StatusCode.UNAVAILABLE
                with pytest.raises(grpc.aio.AioRpcError) as watched:
                    await asyncio.wait_for(watch.read(), 10)
                assert watched.value.code() == grpc.StatusCode.UNAVAILABLE
                # Well within the 600 s grace: nothing was left to wait for.
                await asyncio.wait_for(stopping, 30)
        finally:
            await server.stop(0)
            await close_dependencies(deps)
