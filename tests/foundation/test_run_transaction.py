"""Database.run_transaction: a synchronous unit of work in one transaction, committed when it
returns and rolled back when it raises, on SQLite (the writer thread) and PostgreSQL alike, and
seen at once by the async sessions."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, insert, select

from optix_server.infra.db import Database

METADATA = MetaData()
NOTES = Table(
    "txn_notes", METADATA, Column("id", Integer, primary_key=True), Column("text", String)
)


class Refused(Exception):
    """Raised by a unit of work after it wrote."""


async def test_committed_on_return_rolled_back_on_raise(database_url: str) -> None:
    database = Database(database_url)
    try:
        async with database.engine.begin() as connection:
            await connection.run_sync(METADATA.create_all)

        def write(connection: Connection) -> int:
            connection.execute(insert(NOTES).values(id=1, text="kept"))
            return int(connection.execute(select(NOTES.c.id)).scalar_one())

        def write_then_fail(connection: Connection) -> None:
            connection.execute(insert(NOTES).values(id=2, text="lost"))
            raise Refused

        assert await database.run_transaction(write) == 1
        with pytest.raises(Refused):
            await database.run_transaction(write_then_fail)
        async with database.session() as session:
            texts = (await session.scalars(select(NOTES.c.text).order_by(NOTES.c.id))).all()
        assert texts == ["kept"]
        # And the other way: what an async session wrote, the unit of work reads.
        async with database.session() as session:
            await session.execute(insert(NOTES).values(id=3, text="async"))
        count = await database.run_transaction(
            lambda connection: len(connection.execute(select(NOTES.c.id)).all())
        )
        assert count == 2
    finally:
        await database.dispose()
