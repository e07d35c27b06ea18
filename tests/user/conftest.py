"""Fixtures of the user tests: the user service on a real server, against SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.user.harness import UserHarness, user_server


@pytest.fixture
async def users(database_url: str, tmp_path: Path) -> AsyncIterator[UserHarness]:
    """The user service with a manual clock (parametrised over the database backends)."""
    async with user_server(database_url, tmp_path) as harness:
        yield harness
