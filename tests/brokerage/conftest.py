"""Brokerage fixtures: one Schwab stand-in and one server per database for the whole package
(tests isolate themselves with fresh users), and a per-test view closing the test's clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from tests.brokerage.harness import Stack, brokerage_stack
from tests.support.schwab_standin import StandIn, schwab_standin


@pytest.fixture(scope="package")
def package_standin() -> Iterator[StandIn]:
    """The Schwab stand-in every brokerage server of the run talks to."""
    with schwab_standin() as running:
        yield running


@pytest.fixture(scope="package", params=["sqlite", "postgres"])
def db_kind(request: pytest.FixtureRequest) -> str:
    """Which database the brokerage servers of this part of the run use."""
    return str(request.param)


@pytest_asyncio.fixture(scope="package", loop_scope="package")
async def shared_stack(
    db_kind: str, tmp_path_factory: pytest.TempPathFactory, package_standin: StandIn
) -> AsyncIterator[Stack]:
    """user + marketdata + brokerage on one server."""
    async with brokerage_stack(
        db_kind, tmp_path_factory.mktemp(f"brokerage-{db_kind}"), package_standin
    ) as stack:
        yield stack


@pytest_asyncio.fixture(loop_scope="package")
async def stack(shared_stack: Stack) -> AsyncIterator[Stack]:
    """The shared server; the clients a test opens are closed after it."""
    scoped = shared_stack.fork()
    try:
        yield scoped
    finally:
        await scoped.close()
