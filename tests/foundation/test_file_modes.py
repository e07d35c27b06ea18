"""What var/ holds (database, WAL files, signing keys, pepper) is 0600 in 0700 directories."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from optix.user.v1 import user_service_pb2, user_service_pb2_grpc
from optix_server.infra.files import private_dir, private_file, write_private_file
from tests.support.server import make_settings, running_server

PASSWORD = "correct horse battery staple 42"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _sqlite_url(var_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{(var_dir / 'optix.db').as_posix()}"


@pytest.fixture(autouse=True)
def laptop_umask() -> Iterator[None]:
    """The usual umask 022, under which files would come out world-readable (0644) by default."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _var_paths(var_dir: Path) -> tuple[list[Path], list[Path]]:
    """(directories, files) under `var_dir` that hold secrets or hashes."""
    keys = var_dir / "keys"
    dirs = [var_dir, keys, keys / "jwt"]
    files = [var_dir / f"optix.db{suffix}" for suffix in ("", "-wal", "-shm")]
    files += [keys / "pepper", *sorted((keys / "jwt").glob("*.pem"))]
    return dirs, files


def _assert_private(var_dir: Path) -> None:
    dirs, files = _var_paths(var_dir)
    assert any(path.suffix == ".pem" for path in files), "no signing key was written"
    modes = {str(path.relative_to(var_dir.parent)): oct(_mode(path)) for path in dirs + files}
    expected = {
        **{str(path.relative_to(var_dir.parent)): oct(0o700) for path in dirs},
        **{str(path.relative_to(var_dir.parent)): oct(0o600) for path in files},
    }
    assert modes == expected


async def _serve_and_write(tmp_path: Path, email: str = "alice@example.com") -> None:
    """Start every service on var/, write a user (a password hash), check var/ while serving."""
    var_dir = tmp_path / "var"
    async with running_server(make_settings(_sqlite_url(var_dir), tmp_path)) as running:
        async with running.channel() as channel:
            stub = user_service_pb2_grpc.UserServiceStub(channel)
            await stub.Register(user_service_pb2.RegisterRequest(email=email, password=PASSWORD))
        # While the engine holds its connections, SQLite's -wal and -shm files exist.
        _assert_private(var_dir)


async def test_fresh_var_dir_is_created_private(tmp_path: Path) -> None:
    await _serve_and_write(tmp_path)


async def test_existing_world_readable_var_dir_is_tightened(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    await _serve_and_write(tmp_path)
    # An old checkout's var/: everything as a umask-022 process would have left it, and a
    # connection that keeps the database's -wal/-shm around (0644 too) across the restart.
    legacy = sqlite3.connect(var_dir / "optix.db")
    try:
        legacy.execute("PRAGMA journal_mode=WAL")
        legacy.execute("CREATE TABLE legacy_probe (x INTEGER)")
        legacy.commit()
        dirs, files = _var_paths(var_dir)
        assert (var_dir / "optix.db-wal").exists()
        for path in dirs:
            path.chmod(0o755)
        for path in files:
            path.chmod(0o644)

        await _serve_and_write(tmp_path, email="bob@example.com")
    finally:
        legacy.close()


def test_private_dir_creates_missing_parents_private_and_tightens(tmp_path: Path) -> None:
    existing = tmp_path / "existing"
    existing.mkdir(mode=0o755)
    existing.chmod(0o755)
    nested = existing / "a" / "b"
    private_dir(nested)
    assert (_mode(existing / "a"), _mode(nested)) == (0o700, 0o700)
    assert _mode(existing) == 0o755  # only what it was asked for (and what it created)
    private_dir(existing)
    assert _mode(existing) == 0o700


def test_private_file_never_truncates_and_write_never_replaces(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_bytes(b"keep me")
    path.chmod(0o644)
    private_file(path)
    assert (path.read_bytes(), _mode(path)) == (b"keep me", 0o600)
    with pytest.raises(FileExistsError):
        write_private_file(path, b"other")
    fresh = write_private_file(tmp_path / "fresh", b"data")
    assert (fresh.read_bytes(), _mode(fresh)) == (b"data", 0o600)
    assert _mode(private_file(tmp_path / "empty")) == 0o600
