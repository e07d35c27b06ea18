"""Storage of the watchlist slice. Each method is one transaction; races are settled in SQL:
changes are UPDATEs conditional on the revision they were computed from, the default list is
a partial unique index, request ids are a primary key."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime

from sqlalchemy import CursorResult, and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from optix.watchlist.v1 import watchlist_service_pb2
from optix_server.infra import errors
from optix_server.infra.aip import request_ids
from optix_server.infra.db import Database
from optix_server.watchlist.domain import Watchlist, WatchlistItem, WatchlistPage
from optix_server.watchlist.models import WatchlistRow

# The method request ids are remembered under (its full name, from the generated descriptor).
CREATE_METHOD = (
    watchlist_service_pb2.DESCRIPTOR.services_by_name["WatchlistService"]
    .methods_by_name["CreateWatchlist"]
    .full_name
)
# The position of a list in ListWatchlists' order: (is_default, create time, id).
Cursor = tuple[bool, str, str]


def _items_json(items: tuple[WatchlistItem, ...]) -> str:
    return json.dumps([[item.symbol, item.add_time.isoformat()] for item in items])


def _items(text: str) -> tuple[WatchlistItem, ...]:
    return tuple(
        WatchlistItem(symbol, datetime.fromisoformat(added)) for symbol, added in json.loads(text)
    )


def _domain(row: WatchlistRow) -> Watchlist:
    return Watchlist(
        id=row.id,
        user_id=row.user_id,
        display_name=row.display_name,
        items=_items(row.items),
        is_default=row.is_default,
        revision=row.revision,
        create_time=row.create_time,
        update_time=row.update_time,
    )


def _row(watchlist: Watchlist) -> WatchlistRow:
    return WatchlistRow(
        id=watchlist.id,
        user_id=watchlist.user_id,
        display_name=watchlist.display_name,
        is_default=watchlist.is_default,
        items=_items_json(watchlist.items),
        revision=watchlist.revision,
        create_time=watchlist.create_time,
        update_time=watchlist.update_time,
    )


def cursor_of(watchlist: Watchlist) -> Cursor:
    """Where `watchlist` stands in the list order, for the page token after it."""
    return (watchlist.is_default, watchlist.create_time.isoformat(), watchlist.id)


class _Conflict(Exception):
    """Rolls back make_default's transaction when the list changed meanwhile."""


class WatchlistRepository:
    """Reads and writes watchlists as domain values."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def has_default(self, user_id: str) -> bool:
        """Whether the user has a default list."""
        async with self._db.session() as session:
            found = await session.scalar(
                select(WatchlistRow.id).where(
                    WatchlistRow.user_id == user_id, WatchlistRow.is_default.is_(True)
                )
            )
        return found is not None

    async def add_default(self, watchlist: Watchlist) -> None:
        """Insert the user's default list unless one exists (a racing insert loses quietly)."""
        try:
            async with self._db.session() as session:
                session.add(_row(watchlist))
        except IntegrityError:
            pass  # the other call's default list won the unique index

    async def get(self, user_id: str, watchlist_id: str) -> Watchlist | None:
        """One of the user's lists (None when absent or another user's)."""
        async with self._db.session() as session:
            row = await session.scalar(
                select(WatchlistRow).where(
                    WatchlistRow.id == watchlist_id, WatchlistRow.user_id == user_id
                )
            )
            return None if row is None else _domain(row)

    async def page(self, user_id: str, after: Cursor | None, limit: int) -> WatchlistPage:
        """Up to `limit` lists after `after` in order: the default first, then by creation.
        Keyset paging: lists created or deleted meanwhile never shift the ones that stay."""
        query = select(WatchlistRow).where(WatchlistRow.user_id == user_id)
        if after is not None:
            is_default, created, last_id = after
            at = datetime.fromisoformat(created)
            later = or_(
                WatchlistRow.create_time > at,
                and_(WatchlistRow.create_time == at, WatchlistRow.id > last_id),
            )
            # Descending on is_default: after the default list come the others.
            query = query.where(
                or_(WatchlistRow.is_default.is_(False), later)
                if is_default
                else and_(WatchlistRow.is_default.is_(False), later)
            )
        query = query.order_by(
            WatchlistRow.is_default.desc(), WatchlistRow.create_time, WatchlistRow.id
        ).limit(limit + 1)
        async with self._db.session() as session:
            rows = (await session.scalars(query)).all()
        lists = [_domain(row) for row in rows[:limit]]
        more = len(rows) > limit
        return WatchlistPage(lists, cursor_of(lists[-1]) if more and lists else None)

    async def create(
        self, watchlist: Watchlist, *, request_id: str, max_lists: int, now: datetime
    ) -> Watchlist:
        """Insert a new list; with a `request_id` used before (or concurrently) by this user,
        the list that first create made instead. RESOURCE_EXHAUSTED over `max_lists`."""
        try:
            async with self._db.session() as session:
                # Creates of one user queue behind each other, so the count below cannot be
                # raced past the limit: a no-op write to the user's default list takes its row
                # lock (PostgreSQL) or the write lock (SQLite, whose transaction begins there).
                await session.execute(
                    update(WatchlistRow)
                    .where(
                        WatchlistRow.user_id == watchlist.user_id,
                        WatchlistRow.is_default.is_(True),
                    )
                    .values(revision=WatchlistRow.revision)
                )
                if request_id:
                    request_ids.remember(
                        session,
                        owner=watchlist.user_id,
                        method=CREATE_METHOD,
                        request_id=request_id,
                        resource_id=watchlist.id,
                        now=now,
                    )
                    await session.flush()
                count = await session.scalar(
                    select(func.count())
                    .select_from(WatchlistRow)
                    .where(WatchlistRow.user_id == watchlist.user_id)
                )
                if (count or 0) >= max_lists:
                    raise errors.ResourceExhausted(
                        f"a user may keep at most {max_lists} watchlists",
                        reason="WATCHLIST_LIMIT",
                    )
                session.add(_row(watchlist))
            return watchlist
        except IntegrityError:
            if not request_id:
                raise
        return await request_ids.created_by(
            self._db,
            owner=watchlist.user_id,
            method=CREATE_METHOD,
            request_id=request_id,
            fetch=lambda resource_id: self.get(watchlist.user_id, resource_id),
            what="watchlist",
        )

    async def save(self, watchlist: Watchlist, expected_revision: int) -> Watchlist | None:
        """Write `watchlist`'s name and items as the next revision, only if the stored one is
        still `expected_revision` (None: it changed meanwhile, or is gone)."""
        saved = replace(watchlist, revision=expected_revision + 1)
        async with self._db.session() as session:
            result = await session.execute(
                update(WatchlistRow)
                .where(
                    WatchlistRow.id == watchlist.id,
                    WatchlistRow.user_id == watchlist.user_id,
                    WatchlistRow.revision == expected_revision,
                )
                .values(
                    display_name=saved.display_name,
                    items=_items_json(saved.items),
                    revision=saved.revision,
                    update_time=saved.update_time,
                )
            )
        assert isinstance(result, CursorResult)
        return saved if result.rowcount == 1 else None

    async def make_default(
        self, user_id: str, watchlist_id: str, expected_revision: int, now: datetime
    ) -> bool:
        """Make the list the user's default (the previous one loses the flag, and changes
        revision), only if it is still at `expected_revision`."""
        try:
            async with self._db.session() as session:
                await self._swap_default(session, user_id, watchlist_id, expected_revision, now)
        except (_Conflict, IntegrityError):
            # IntegrityError: another list became the default in a transaction this one could
            # not see yet; the caller re-reads and tries again.
            return False
        return True

    @staticmethod
    async def _swap_default(
        session: AsyncSession,
        user_id: str,
        watchlist_id: str,
        expected_revision: int,
        now: datetime,
    ) -> None:
        # The old default first: the partial unique index admits one default at a time.
        await session.execute(
            update(WatchlistRow)
            .where(
                WatchlistRow.user_id == user_id,
                WatchlistRow.is_default.is_(True),
                WatchlistRow.id != watchlist_id,
            )
            .values(is_default=False, revision=WatchlistRow.revision + 1, update_time=now)
        )
        result = await session.execute(
            update(WatchlistRow)
            .where(
                WatchlistRow.id == watchlist_id,
                WatchlistRow.user_id == user_id,
                WatchlistRow.revision == expected_revision,
            )
            .values(is_default=True, revision=expected_revision + 1, update_time=now)
        )
        assert isinstance(result, CursorResult)
        if result.rowcount != 1:
            raise _Conflict

    async def delete(self, user_id: str, watchlist_id: str, expected_revision: int | None) -> bool:
        """Delete a list that is not the default (and still at `expected_revision` when given);
        False when nothing matched."""
        conditions = [
            WatchlistRow.id == watchlist_id,
            WatchlistRow.user_id == user_id,
            WatchlistRow.is_default.is_(False),
        ]
        if expected_revision is not None:
            conditions.append(WatchlistRow.revision == expected_revision)
        async with self._db.session() as session:
            result = await session.execute(delete(WatchlistRow).where(*conditions))
        assert isinstance(result, CursorResult)
        return result.rowcount == 1
