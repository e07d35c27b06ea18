"""Start-up health: every service has a status from the moment the port accepts, and the overall
status turns SERVING only after every hosted service did."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from optix_server.infra.app import OptixServer, build_dependencies, close_dependencies
from optix_server.infra.db import migrate
from optix_server.infra.health import DrainableHealth
from optix_server.infra.module import Dependencies, ServiceModule
from tests.support.server import make_settings

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
NAMES = ("optix.test.v1.SlowService", "optix.test.v1.OtherService")


class RecordingHealth(DrainableHealth):
    """A health servicer remembering every status set, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.history: list[tuple[str, int]] = []

    async def set(self, service: str, status: int) -> None:
        """Record, then set."""
        self.history.append((service, status))
        await super().set(service, status)


class SlowStart:
    """An on_start hook that says when it began and finishes when the test releases it."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self) -> None:
        """Wait for the test."""
        self.entered.set()
        await self.release.wait()


@pytest.fixture
async def deps(tmp_path: Path) -> AsyncIterator[Dependencies]:
    """Dependencies for a server hosting only the fake slices (the database holds only what
    every server reads: the session endings)."""
    url = f"sqlite+aiosqlite:///{(tmp_path / 'shared.db').as_posix()}"
    deps = build_dependencies(make_settings(url, tmp_path))
    await migrate(deps.database)
    try:
        yield deps
    finally:
        await close_dependencies(deps)


def _modules(hook: SlowStart) -> list[ServiceModule]:
    return [
        ServiceModule(name="slow", full_name=NAMES[0], register=lambda _s: None, on_start=hook),
        ServiceModule(name="other", full_name=NAMES[1], register=lambda _s: None),
    ]


async def _statuses(stub: health_pb2_grpc.HealthStub) -> dict[str, int]:
    """One probe round, the overall status first: statuses only rise during start-up, so an
    overall SERVING followed by a service NOT_SERVING would be a real inversion."""
    found: dict[str, int] = {}
    for name in ("", *NAMES):
        try:
            response = await stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
        except grpc.aio.AioRpcError as exc:
            pytest.fail(f"Check({name!r}) answered {exc.code().name} while starting")
        found[name] = response.status
    return found


async def test_services_answer_not_serving_while_on_start_runs(deps: Dependencies) -> None:
    hook = SlowStart()
    server = OptixServer(deps, _modules(hook))
    starting = asyncio.create_task(server.start())
    try:
        # on_start runs after server.start(): from here on the port accepts.
        await hook.entered.wait()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            assert await _statuses(stub) == {"": NOT_SERVING, **dict.fromkeys(NAMES, NOT_SERVING)}
            hook.release.set()
            rounds = []
            while not starting.done():
                rounds.append(await _statuses(stub))
            await starting
            rounds.append(await _statuses(stub))
        for seen in rounds:
            if seen[""] == SERVING:
                assert all(seen[name] == SERVING for name in NAMES), rounds
        assert rounds[-1] == {"": SERVING, **dict.fromkeys(NAMES, SERVING)}
    finally:
        hook.release.set()
        await asyncio.gather(starting, return_exceptions=True)
        await server.stop(grace=0)


async def test_every_status_exists_before_accepting_and_overall_is_set_last(
    deps: Dependencies,
) -> None:
    hook = SlowStart()
    recorder = RecordingHealth()
    server = OptixServer(deps, _modules(hook), health_servicer=recorder)
    starting = asyncio.create_task(server.start())
    try:
        await hook.entered.wait()
        # Everything set so far was set before the port accepted (on_start follows it).
        assert {name for name, _ in recorder.history} == {"", *NAMES}
        assert all(status == NOT_SERVING for _, status in recorder.history)
        hook.release.set()
        await starting
        serving = [name for name, status in recorder.history if status == SERVING]
        assert sorted(serving[:-1]) == sorted(NAMES)
        assert serving[-1] == ""
    finally:
        hook.release.set()
        await asyncio.gather(starting, return_exceptions=True)
        await server.stop(grace=0)
