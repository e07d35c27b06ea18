"""Start a real OPTIX grpc.aio server on port 0 against a given database and broker."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc

from optix_server.infra.access_log import AccessLog
from optix_server.infra.app import OptixServer, build_dependencies, close_dependencies
from optix_server.infra.auth.clock import Clock
from optix_server.infra.db import migrate
from optix_server.infra.module import Dependencies, ServiceModule
from optix_server.infra.settings import ALL_SERVICES, Settings
from optix_server.services import create_modules

# bcrypt's minimum cost: the tests exercise the logic, not the work factor.
TEST_BCRYPT_COST = 4


@dataclass
class RunningServer:
    """A started server: where to reach it and its dependencies (for white-box checks)."""

    address: str
    server: OptixServer
    deps: Dependencies

    @property
    def settings(self) -> Settings:
        """The settings the server runs with."""
        return self.deps.settings

    def channel(self) -> grpc.aio.Channel:
        """A new insecure channel to the server (caller closes it)."""
        return grpc.aio.insecure_channel(self.address)

    def service_metadata(self) -> tuple[tuple[str, str], ...]:
        """`authorization` metadata carrying a service-identity token valid on this server."""
        return service_metadata(self.deps)


def service_metadata(deps: Dependencies) -> tuple[tuple[str, str], ...]:
    """`authorization` metadata with a service token from the server's own token authority."""
    token = deps.tokens.issue_service_token("tests").token
    return (("authorization", f"Bearer {token}"),)


def make_settings(
    database_url: str,
    tmp_path: Path,
    *,
    redis_url: str | None = None,
    redis_prefix: str = "optix:",
    services: Sequence[str] = ALL_SERVICES,
    env: Mapping[str, str] | None = None,
    **overrides: object,
) -> Settings:
    """Settings for a test server on 127.0.0.1:0: cheap bcrypt, `env` adds OPTIX_* variables
    for the slices' own settings, `overrides` replace any field."""
    settings = Settings(
        host="127.0.0.1",
        port=0,
        services=tuple(services),
        var_dir=tmp_path / "var",
        database_url_override=database_url,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        shutdown_grace_seconds=1.0,
        env={"OPTIX_USER_BCRYPT_COST": str(TEST_BCRYPT_COST), **(env or {})},
    )
    return dataclasses.replace(settings, **overrides)  # type: ignore[arg-type]


@asynccontextmanager
async def running_server(
    settings: Settings,
    *,
    clock: Clock | None = None,
    modules: Callable[[Dependencies], Sequence[ServiceModule]] | None = None,
    access_log: AccessLog | None = None,
) -> AsyncIterator[RunningServer]:
    """Migrate, start the services on port 0, yield, then stop gracefully. `clock` replaces
    the system clock; `modules` builds the hosted slices (default: settings.services), so a
    test can inject a slice's own settings; `access_log` replaces the settings' one."""
    deps = build_dependencies(settings, clock)
    try:
        await migrate(deps.database)
        hosted = modules(deps) if modules else create_modules(deps, settings.services)
        server = OptixServer(deps, hosted, access_log=access_log)
        port = await server.start()
        try:
            yield RunningServer(f"127.0.0.1:{port}", server, deps)
        finally:
            await server.stop(grace=settings.shutdown_grace_seconds)
    finally:
        await close_dependencies(deps)
