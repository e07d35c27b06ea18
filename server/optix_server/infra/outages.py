"""Telling a dependency outage (the database or Redis unreachable, restarting, refusing
connections) from a bug, so a call that met one ends UNAVAILABLE with RetryInfo, which clients
and the SDK retry, instead of INTERNAL; and so the client learns which kind of dependency is
down without a class name, host or port."""

from __future__ import annotations

from datetime import timedelta

import redis.exceptions
import sqlalchemy.exc

from optix_server.infra import errors

RETRY_AFTER = timedelta(seconds=1)

# Errors raised while a connection to the database cannot be made or was lost. SQLAlchemy wraps
# the drivers' (asyncpg, sqlite3) in these; OperationalError also covers a SQLite database that
# is locked past its busy timeout, which is as retryable as an outage.
_DATABASE = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,  # the pool had no connection to give within its timeout
)
_CACHE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
# Raised by drivers that do not wrap them (asyncpg while connecting, redis-py's sockets).
_CONNECTION = (ConnectionRefusedError, ConnectionResetError, ConnectionAbortedError, TimeoutError)


def _kind(exc: BaseException) -> str | None:
    if isinstance(exc, _DATABASE):
        return "database"
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
        return "database"
    if isinstance(exc, _CACHE):
        return "cache"
    if isinstance(exc, _CONNECTION):
        return "backing service"
    return None


def dependency_outage(exc: BaseException) -> errors.Unavailable | None:
    """The UNAVAILABLE a call should end with when `exc` (or what caused it) is a dependency
    outage; None when it is not one."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        kind = _kind(current)
        if kind is not None:
            return errors.Unavailable(
                f"the {kind} is unavailable; retry shortly",
                retry_after=RETRY_AFTER,
                reason="DEPENDENCY_UNAVAILABLE",
            )
        current = current.__cause__ or current.__context__
    return None
