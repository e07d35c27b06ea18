"""SQLAlchemy 2.0 async storage: the declarative Base, the Database handle and migrations."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, DateTime, Dialect, Engine, TypeDecorator, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from optix_server.infra.files import private_dir, private_file, tighten

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# Files SQLite keeps next to a database `x.db`: `x.db-wal`, `x.db-shm`, `x.db-journal`.
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")

T = TypeVar("T")


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back timezone-aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert to UTC; naive values are refused because their zone is a guess."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UtcDateTime column")
        value = value.astimezone(UTC)
        # SQLite compares timestamps as text: store every value naive-UTC in one format.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Attach UTC to values that come back naive."""
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def new_id() -> str:
    """A new opaque row id: 32 hex characters of a random UUID."""
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    """Declarative base shared by every slice's models (one metadata for Alembic)."""


class DatabaseConfigError(ValueError):
    """The database URL cannot be used (bad scheme, unknown driver, malformed)."""


def _check_url(url: str) -> None:
    try:
        parsed = make_url(url)
        if parsed.port is not None and not 0 < parsed.port < 65536:
            raise ValueError("port out of range")
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number in range
        # Not echoed: a malformed URL may still carry a password.
        raise DatabaseConfigError(
            "OPTIX_DATABASE_URL is not a valid URL (expected driver://user:pass@host[:port]/db)"
        ) from None
    if parsed.drivername not in {"sqlite+aiosqlite", "postgresql+asyncpg"}:
        raise DatabaseConfigError(
            f"OPTIX_DATABASE_URL driver must be sqlite+aiosqlite or postgresql+asyncpg, "
            f"got {parsed.drivername!r}"
        )


def _enable_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers proceed during a write; busy_timeout waits instead of failing on a lock;
    # foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _make_sqlite_files_private(path: Path) -> None:
    # The database holds password hashes, sealed TOTP secrets and token hashes. SQLite creates
    # its -wal/-shm/-journal files with the database file's mode, so a 0600 database made before
    # SQLite first opens it keeps them all private; files of an older var/ are tightened here.
    # A missing directory is created private; an existing one is left as its owner made it
    # (the process's var/ is tightened at start-up, not any folder a URL points into).
    if not path.parent.exists():
        private_dir(path.parent)
    private_file(path)
    for suffix in SQLITE_SIDE_FILES:
        tighten(path.with_name(path.name + suffix))


class Database:
    """An async engine plus a session factory; one per process, passed to repositories."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        _check_url(url)
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        path = make_url(url).database if self.is_sqlite else None
        on_disk = self.is_sqlite and bool(path) and path != ":memory:"
        if on_disk:
            assert path is not None
            _make_sqlite_files_private(Path(path))
        # hide_parameters: an unexpected DB error logged as INTERNAL must not carry row values.
        kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
        if not self.is_sqlite:
            kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _enable_sqlite_pragmas)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # The SQLite writer: a synchronous engine on the same file, used from one thread only
        # (made on first use; None for PostgreSQL and in-memory SQLite, where it cannot help).
        self._writer_url = make_url(url).set(drivername="sqlite+pysqlite") if on_disk else None
        self._writer: tuple[Engine, ThreadPoolExecutor] | None = None

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction: committed on success, rolled back on any exception."""
        async with self._sessions() as session, session.begin():
            yield session

    async def run_transaction(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in one transaction on a synchronous connection (committed when it
        returns, rolled back when it raises): for short write paths whose latency counts.

        On a SQLite file the whole transaction runs on the writer thread in one hop: through
        aiosqlite every statement is a hop to its thread and back, and each hop back waits for
        the event loop, which under load costs about a millisecond a statement. On PostgreSQL
        (a native async driver) it runs on the async engine's connection as usual."""
        if self._writer_url is None:
            async with self.engine.begin() as connection:
                return await connection.run_sync(work)
        engine, thread = self._sqlite_writer(self._writer_url)

        def transact() -> T:
            with engine.begin() as connection:
                return work(connection)

        return await asyncio.get_running_loop().run_in_executor(thread, transact)

    def _sqlite_writer(self, url: URL) -> tuple[Engine, ThreadPoolExecutor]:
        if self._writer is None:
            engine = create_engine(url, hide_parameters=True)
            event.listen(engine, "connect", _enable_sqlite_pragmas)
            self._writer = engine, ThreadPoolExecutor(1, thread_name_prefix="optix-sqlite-writer")
        return self._writer

    async def ping(self) -> None:
        """Open a connection and run a trivial query; raises if the database is unreachable."""
        from sqlalchemy import text

        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        """Close every pooled connection (and the SQLite writer's, on its own thread)."""
        if self._writer is not None:
            engine, thread = self._writer
            self._writer = None
            await asyncio.get_running_loop().run_in_executor(thread, engine.dispose)
            thread.shutdown()
        await self.engine.dispose()


def alembic_config(url: str) -> Any:
    """An Alembic Config pointing at the bundled migrations and `url`."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def migrate(database: Database) -> None:
    """Upgrade the schema to the newest revision of every branch (`alembic upgrade heads`)."""
    from alembic import command

    config = alembic_config(database.url)

    def upgrade(sync_connection: Any) -> None:
        config.attributes["connection"] = sync_connection
        command.upgrade(config, "heads")

    async with database.engine.begin() as conn:
        await conn.run_sync(upgrade)


async def pending_migrations(database: Database) -> tuple[set[str], set[str]]:
    """(revisions the database is at, head revisions of the bundled migrations): equal when
    the schema is current."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    heads = set(ScriptDirectory.from_config(alembic_config(database.url)).get_heads())

    def current(sync_connection: Any) -> set[str]:
        return set(MigrationContext.configure(sync_connection).get_current_heads())

    async with database.engine.connect() as conn:
        at = await conn.run_sync(current)
    return at, heads
