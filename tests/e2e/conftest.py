"""End-to-end fixtures: one `optix serve` and one Envoy in front of it for the whole session."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.stack import (
    Edge,
    Process,
    envoy,
    envoy_env,
    free_port,
    optix_server,
    render_envoy_config,
)


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker that gives a test its own Envoy settings."""
    config.addinivalue_line("markers", "edge_env(**env): OPTIX_ENVOY_* settings for custom_edge")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything in tests/e2e carries the e2e marker."""
    for item in items:
        if "tests/e2e/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.e2e)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say plainly, even under -q, when the browser test could not run."""
    for report in terminalreporter.stats.get("skipped", []):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
        if "Chromium" in str(reason):
            terminalreporter.write_line(f"NOTE: {reason}", yellow=True, bold=True)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium; skipped (or failed, under OPTIX_REQUIRE_BROWSER=1) when absent.

    Session-scoped and requested first, so a missing browser costs no server start-up."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        reason = "Chromium is not installed (apt-get install chromium): browser test not run"
        if os.environ.get("OPTIX_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + ", but OPTIX_REQUIRE_BROWSER=1 requires it")
        pytest.skip(reason)
    return found


@pytest.fixture(scope="session")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    """All services in one real `optix serve` process (SQLite) on a port the OS picked."""
    with optix_server(tmp_path_factory.mktemp("optix-var")) as running:
        yield running


@pytest.fixture(scope="session")
def edge(backend: Process, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    """Envoy from the generated config, on free ports, in front of `backend`."""
    listen, admin = free_port(), free_port()
    config = render_envoy_config(
        tmp_path_factory.mktemp("envoy") / "envoy.yaml",
        envoy_env(backend.address, listen, admin),
    )
    with envoy(config, listen, admin) as running:
        yield running


@pytest.fixture
def custom_edge(backend: Process, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Edge]:
    """A second Envoy with extra OPTIX_ENVOY_* settings from the test's `edge_env` marker
    ("{backend}" in a value stands for the running server's address)."""
    marker = request.node.get_closest_marker("edge_env")
    extra: dict[str, str] = {
        key: str(value).replace("{backend}", backend.address)
        for key, value in (marker.kwargs if marker else {}).items()
    }
    listen, admin = free_port(), free_port()
    config = render_envoy_config(
        tmp_path / "envoy.yaml", envoy_env(backend.address, listen, admin, **extra)
    )
    with envoy(config, listen, admin) as running:
        yield running
