"""`optix serve` refuses unusable configuration with one line, not a traceback."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from optix_server.infra.db import Database, pending_migrations
from tests.support.backends import fresh_database_url

OPTIX = [sys.executable, "-m", "optix_server.cli"]


def _run(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "OPTIX_VAR_DIR": str(tmp_path / "var"), **env}
    return subprocess.run(
        [*OPTIX, *args], env=full_env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("postgresql+asyncpg://optix:s3cret@127.0.0.1:1/optix", "cannot reach the database"),
        ("mysql://root@127.0.0.1/optix", "driver must be"),
        ("not a url at all", "not a valid URL"),
        # Malformed (no "://") but carrying a password: the message must not echo it.
        ("postgresql+asyncpg//optix:s3cret@127.0.0.1/optix", "not a valid URL"),
        # A port that is not a number, or not one in range.
        ("postgresql+asyncpg://optix:s3cret@127.0.0.1:5432x/optix", "not a valid URL"),
        ("postgresql+asyncpg://optix:s3cret@127.0.0.1:70000/optix", "not a valid URL"),
    ],
)
def test_broken_database_url_exits_nonzero_with_one_line(
    url: str, fragment: str, tmp_path: Path
) -> None:
    result = _run(["serve", "--port", "0"], {"OPTIX_DATABASE_URL": url}, tmp_path)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr
    assert "s3cret" not in result.stderr


def test_unknown_service_is_refused(tmp_path: Path) -> None:
    result = _run(["serve", "--services", "user,nope"], {}, tmp_path)
    assert result.returncode != 0
    assert "unknown service(s) nope" in result.stderr


def test_bad_number_in_env_is_refused(tmp_path: Path) -> None:
    result = _run(["serve"], {"OPTIX_PORT": "eighty"}, tmp_path)
    assert result.returncode != 0
    assert "OPTIX_PORT must be an integer" in result.stderr


def test_taken_port_is_refused_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _run(["serve", "--port", str(port)], {}, tmp_path)
    assert result.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_redis_exits_nonzero_with_one_line(tmp_path: Path) -> None:
    result = _run(
        ["serve", "--port", "0"], {"OPTIX_REDIS_URL": "redis://:pw@127.0.0.1:1/0"}, tmp_path
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "cannot reach Redis at" in lines[-1], result.stderr
    assert "Traceback" not in result.stderr
    assert ":pw@" not in result.stderr


@pytest.mark.parametrize(
    "url",
    [
        "localhost:6379",
        "redis://:pw@",
        "redis://:pw@host:port/0",
        "http://:pw@h/0",
        "redis://:pw@h/x",
    ],
)
def test_malformed_redis_url_exits_nonzero_with_one_line(url: str, tmp_path: Path) -> None:
    result = _run(["serve", "--port", "0"], {"OPTIX_REDIS_URL": url}, tmp_path)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "OPTIX_REDIS_URL must look like" in lines[0], result.stderr
    assert ":pw@" not in result.stderr


async def test_an_unmigrated_database_is_refused_until_migrated(tmp_path: Path) -> None:
    async with fresh_database_url("postgres", tmp_path) as url:
        env = {"OPTIX_DATABASE_URL": url}
        refused = await asyncio.to_thread(_run, ["serve", "--port", "0"], env, tmp_path)
        assert refused.returncode != 0
        lines = [line for line in refused.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "is not migrated (no schema" in lines[0], refused.stderr
        assert "optix migrate" in lines[0]
        migrated = await asyncio.to_thread(_run, ["migrate"], env, tmp_path)
        assert migrated.returncode == 0, migrated.stderr
        database = Database(url)
        try:
            at, heads = await pending_migrations(database)
        finally:
            await database.dispose()
        assert at == heads and heads
