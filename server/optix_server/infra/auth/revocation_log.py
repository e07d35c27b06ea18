"""The durable record of ended sessions: a table every process reads (auth_session_endings)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CursorResult, String, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from optix_server.infra.auth.revocation import Ending
from optix_server.infra.db import Base, Database, UtcDateTime


class SessionEndingRow(Base):
    """An ended session (token family) and when its last access token expires."""

    __tablename__ = "auth_session_endings"

    session_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    revoke_time: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    expire_time: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class DatabaseRevocationLog:
    """Session endings kept in the database."""

    def __init__(self, database: Database) -> None:
        self._db = database
        insert = (
            postgresql.insert if database.engine.dialect.name == "postgresql" else sqlite.insert
        )
        self._insert = insert

    async def add(self, ending: Ending) -> None:
        """Record an ending (a second ending of one session keeps the first row)."""
        statement = (
            self._insert(SessionEndingRow)
            .values(
                session_id=ending.session_id,
                revoke_time=ending.revoke_time,
                expire_time=ending.expire_time,
            )
            .on_conflict_do_nothing(index_elements=[SessionEndingRow.session_id])
        )
        async with self._db.session() as session:
            await session.execute(statement)

    async def since(self, revoked_after: datetime, now: datetime) -> list[Ending]:
        """Endings revoked after `revoked_after` whose tokens have not all expired at `now`."""
        query = select(SessionEndingRow).where(
            SessionEndingRow.revoke_time > revoked_after, SessionEndingRow.expire_time > now
        )
        async with self._db.session() as session:
            rows = (await session.scalars(query)).all()
        return [Ending(r.session_id, r.revoke_time, r.expire_time) for r in rows]

    async def prune(self, expired_before: datetime) -> int:
        """Delete endings whose tokens have all expired."""
        async with self._db.session() as session:
            result = await session.execute(
                delete(SessionEndingRow).where(SessionEndingRow.expire_time <= expired_before)
            )
        assert isinstance(result, CursorResult)
        return int(result.rowcount)
