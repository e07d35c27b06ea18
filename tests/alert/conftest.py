"""Alert fixtures: one server per database for the whole package (tests isolate themselves with
fresh users), and a per-test view of it that closes the test's clients."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.alert.harness import Stack, alert_stack


@pytest.fixture(scope="package", params=["sqlite", "postgres"])
def db_kind(request: pytest.FixtureRequest) -> str:
    """Which database the alert servers of this part of the run use."""
    return str(request.param)


@pytest_asyncio.fixture(scope="package", loop_scope="package")
async def shared_stack(
    db_kind: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """user + marketdata + alert on one server with the default settings."""
    async with alert_stack(db_kind, tmp_path_factory.mktemp(f"alert-{db_kind}")) as stack:
        yield stack


@pytest_asyncio.fixture(loop_scope="package")
async def stack(shared_stack: Stack) -> AsyncIterator[Stack]:
    """The shared server; the clients a test opens are closed after it."""
    scoped = shared_stack.fork()
    try:
        yield scoped
    finally:
        await scoped.close()
