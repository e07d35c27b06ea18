"""Fixtures shared by every test: fresh databases, Redis namespaces and a real server on port 0."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.backends import fresh_database_url, redis_namespace
from tests.support.server import RunningServer, make_settings, running_server


@pytest.fixture(params=["sqlite", "postgres"])
def storage_kind(request: pytest.FixtureRequest) -> str:
    """Which database backend the test runs against."""
    return str(request.param)


@pytest.fixture
async def database_url(storage_kind: str, tmp_path: Path) -> AsyncIterator[str]:
    """A URL to a fresh, empty database of the parametrised kind."""
    async with fresh_database_url(storage_kind, tmp_path) as url:
        yield url


@pytest.fixture(params=["memory", "redis"])
def broker_kind(request: pytest.FixtureRequest) -> str:
    """Which cache/pub-sub backend the test runs against."""
    return str(request.param)


@pytest.fixture
async def redis_ns() -> AsyncIterator[tuple[str, str]]:
    """(redis url, isolated key prefix) for one test."""
    async with redis_namespace() as ns:
        yield ns


@pytest.fixture
async def server(database_url: str, tmp_path: Path) -> AsyncIterator[RunningServer]:
    """Every service on a real grpc.aio server on port 0, against SQLite and PostgreSQL."""
    async with running_server(make_settings(database_url, tmp_path)) as running:
        yield running


@pytest.fixture
async def sqlite_server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    """Every service on a real server with the embedded SQLite database only."""
    async with (
        fresh_database_url("sqlite", tmp_path) as url,
        running_server(make_settings(url, tmp_path)) as running,
    ):
        yield running


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line per skip reason with its count, even under -q, so a skipped backend shows."""
    reasons: Counter[str] = Counter()
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reasons[reason.removeprefix("Skipped: ")] += 1
    if not reasons:
        return
    terminalreporter.write_line("skipped, by reason:")
    for reason, count in reasons.most_common():
        terminalreporter.write_line(f"  {count:4d}  {reason}")
