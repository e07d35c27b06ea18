"""The fixtures a slice's test package shares: one server per database for the whole package
(tests isolate themselves with fresh users), and a per-test view of it that closes the test's
clients. A conftest binds them: `db_kind, shared_stack, stack = per_database_stack(start, "x")`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest
import pytest_asyncio


class ForkableStack(Protocol):
    """A running stack that hands each test its own set of clients."""

    def fork(self) -> Any:
        """The same servers with a separate set of clients (closed by `close`)."""
        ...

    async def close(self) -> None:
        """Close the clients this view opened."""
        ...


S = TypeVar("S", bound=ForkableStack)


def per_database_stack(
    start: Callable[[str, Path], AbstractAsyncContextManager[S]], label: str
) -> tuple[Any, Any, Any]:
    """The `db_kind`, `shared_stack` and `stack` fixtures for stacks `start(kind, tmp)` makes."""

    @pytest.fixture(scope="package", params=["sqlite", "postgres"])
    def db_kind(request: pytest.FixtureRequest) -> str:
        """Which database the servers of this part of the run use."""
        return str(request.param)

    @pytest_asyncio.fixture(scope="package", loop_scope="package")
    async def shared_stack(
        db_kind: str, tmp_path_factory: pytest.TempPathFactory
    ) -> AsyncIterator[S]:
        """The package's stack on `db_kind`, with default settings."""
        async with start(db_kind, tmp_path_factory.mktemp(f"{label}-{db_kind}")) as stack:
            yield stack

    @pytest_asyncio.fixture(loop_scope="package")
    async def stack(shared_stack: S) -> AsyncIterator[Any]:
        """The shared stack; the clients a test opens are closed after it."""
        scoped = shared_stack.fork()
        try:
            yield scoped
        finally:
            await scoped.close()

    return db_kind, shared_stack, stack
