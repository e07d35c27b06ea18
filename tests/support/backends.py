"""Test backends: a fresh database per test (SQLite file or a new PostgreSQL database) and an
isolated Redis namespace. PostgreSQL/Redis variants need OPTIX_TEST_DATABASE_URL /
OPTIX_TEST_REDIS_URL; with OPTIX_TEST_REQUIRE_SERVICES=1 (set by .ci/run) their absence fails."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
from redis.asyncio import Redis
from sqlalchemy.engine import make_url


def _missing(variable: str) -> None:
    message = f"{variable} is not set: this PostgreSQL/Redis variant cannot run here"
    if os.environ.get("OPTIX_TEST_REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


def postgres_admin_url() -> str:
    """The PostgreSQL server URL for tests (skips/fails when unset)."""
    url = os.environ.get("OPTIX_TEST_DATABASE_URL", "")
    if not url:
        _missing("OPTIX_TEST_DATABASE_URL")
    return url


def redis_url() -> str:
    """The Redis URL for tests (skips/fails when unset)."""
    url = os.environ.get("OPTIX_TEST_REDIS_URL", "")
    if not url:
        _missing("OPTIX_TEST_REDIS_URL")
    return url


@asynccontextmanager
async def fresh_database_url(kind: str, tmp_path: Path) -> AsyncIterator[str]:
    """A URL to an empty database of `kind` ("sqlite" or "postgres"), dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{(tmp_path / 'optix-test.db').as_posix()}"
        return
    admin = make_url(postgres_admin_url())
    name = f"optix_test_{uuid.uuid4().hex[:12]}"
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


@asynccontextmanager
async def redis_namespace() -> AsyncIterator[tuple[str, str]]:
    """(redis url, unique key prefix); every key under the prefix is deleted afterwards."""
    url = redis_url()
    prefix = f"optix-test-{uuid.uuid4().hex[:12]}:"
    try:
        yield url, prefix
    finally:
        client = Redis.from_url(url)
        try:
            keys = [key async for key in client.scan_iter(match=prefix + "*")]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()
