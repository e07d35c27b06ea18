"""Storage of the brokerage slice. Each method is one transaction; races are settled in SQL: a
state is redeemed by the DELETE that removes it, a sync is claimed by a conditional UPDATE of the
connection's lease (after SELECT ... FOR UPDATE SKIP LOCKED on PostgreSQL), and a sync's result
is written only while its worker still holds the lease."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import CursorResult, and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from optix_server.brokerage import records
from optix_server.brokerage.connectors.models import BrokerTransaction
from optix_server.brokerage.domain import (
    NEEDS_USER,
    Account,
    Connection,
    ConnectionStatus,
    PendingStart,
    SealedTokens,
    Snapshot,
    StoredPosition,
    StoredTransaction,
    SyncState,
)
from optix_server.brokerage.models import (
    AccountRow,
    ConnectionRow,
    PositionRow,
    StartRow,
    TokenRow,
    TransactionRow,
)
from optix_server.brokerage.tokens import SealedValue, TokenKind, token_context
from optix_server.infra import errors
from optix_server.infra.db import Database, new_id

_BUSY = (SyncState.QUEUED.value, SyncState.RUNNING.value)
_NEEDS_USER = tuple(s.value for s in NEEDS_USER)
# Bound parameters per IN list (SQLite allows 32766 in all; PostgreSQL 65535).
_ID_CHUNK = 500
_TOKEN_COLUMNS: dict[TokenKind, str] = {"access": "sealed_access", "refresh": "sealed_refresh"}


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    """How a finished sync leaves its connection."""

    status: ConnectionStatus
    status_message: str
    result: SyncState
    error_message: str
    # When the worker should sync it again; None: not until the user acts.
    next_sync_time: datetime | None


@dataclass(frozen=True, slots=True)
class TransactionFilter:
    """ListTransactions' filters, already validated."""

    connection_id: str | None
    account_id: str | None
    start: datetime | None
    end: datetime | None
    types: tuple[int, ...]
    symbol: str


def _rowcount(result: object) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


class BrokerageRepository:
    """Reads and writes the brokerage tables as domain values."""

    def __init__(self, database: Database) -> None:
        self._db = database

    # --- OAuth starts ------------------------------------------------------------------------

    async def add_start(self, value: PendingStart) -> None:
        """Remember a pending start."""
        async with self._db.session() as session:
            session.add(records.start_row(value))

    async def take_start(self, state_hash: str) -> PendingStart | None:
        """Redeem a start: it is deleted whatever happens next, and only one caller gets it."""
        async with self._db.session() as session:
            row = await session.get(StartRow, state_hash)
            if row is None:
                return None
            found = records.start(row)
            gone = await session.execute(delete(StartRow).where(StartRow.state_hash == state_hash))
            return found if _rowcount(gone) == 1 else None

    async def purge_starts(self, before: datetime) -> int:
        """Delete starts that expired before `before`."""
        async with self._db.session() as session:
            gone = await session.execute(delete(StartRow).where(StartRow.expire_time < before))
            return _rowcount(gone)

    # --- connections -------------------------------------------------------------------------

    async def create_connection(
        self, value: Connection, tokens: SealedTokens, *, max_per_user: int
    ) -> Connection:
        """Insert a connection with its tokens; RESOURCE_EXHAUSTED at the per-user limit."""
        async with self._db.session() as session:
            count = await session.scalar(
                select(func.count()).where(ConnectionRow.user_id == value.user_id)
            )
            if (count or 0) >= max_per_user:
                raise errors.ResourceExhausted(
                    f"at most {max_per_user} connections per user; delete one first",
                    reason="CONNECTION_LIMIT",
                )
            session.add(records.connection_row(value))
            await session.flush()
            session.add(TokenRow(connection_id=value.id, **records.token_values(tokens)))
        return value

    async def reauthorize(
        self,
        user_id: str,
        connection_id: str,
        tokens: SealedTokens,
        *,
        reauth_time: datetime | None,
        now: datetime,
    ) -> Connection | None:
        """New tokens for an existing connection, queued for a sync; None when it is gone."""
        async with self._db.session() as session:
            changed = await session.execute(
                update(ConnectionRow)
                .where(ConnectionRow.id == connection_id, ConnectionRow.user_id == user_id)
                .values(
                    status=ConnectionStatus.SYNCING.value,
                    status_message="",
                    reauth_required_time=reauth_time,
                    sync_state=SyncState.QUEUED.value,
                    sync_create_time=now,
                    sync_start_time=None,
                    next_sync_time=now,
                    update_time=now,
                )
            )
            if _rowcount(changed) != 1:
                return None
            await session.execute(
                update(TokenRow)
                .where(TokenRow.connection_id == connection_id)
                .values(**records.token_values(tokens))
            )
            row = await session.get(ConnectionRow, connection_id)
            assert row is not None
            return records.connection(row)

    async def get(self, user_id: str, connection_id: str) -> Connection | None:
        """One of the user's connections (None when absent or another user's)."""
        async with self._db.session() as session:
            row = await session.scalar(
                select(ConnectionRow).where(
                    ConnectionRow.id == connection_id, ConnectionRow.user_id == user_id
                )
            )
            return None if row is None else records.connection(row)

    async def connection_by_id(self, connection_id: str) -> Connection | None:
        """A connection by id alone (the sync worker's view)."""
        async with self._db.session() as session:
            row = await session.get(ConnectionRow, connection_id)
            return None if row is None else records.connection(row)

    async def connections(
        self, user_id: str, after: tuple[datetime, str] | None = None, limit: int | None = None
    ) -> list[Connection]:
        """The user's connections oldest first, after a (create time, id) cursor."""
        query = select(ConnectionRow).where(ConnectionRow.user_id == user_id)
        if after is not None:
            at, last = after
            query = query.where(
                or_(
                    ConnectionRow.create_time > at,
                    and_(ConnectionRow.create_time == at, ConnectionRow.id > last),
                )
            )
        query = query.order_by(ConnectionRow.create_time, ConnectionRow.id)
        if limit is not None:
            query = query.limit(limit)
        async with self._db.session() as session:
            return [records.connection(r) for r in await session.scalars(query)]

    async def delete_connection(self, user_id: str, connection_id: str) -> bool:
        """Delete a connection and every row under it; whether it existed."""
        async with self._db.session() as session:
            owned = await session.scalar(
                select(ConnectionRow.id).where(
                    ConnectionRow.id == connection_id, ConnectionRow.user_id == user_id
                )
            )
            if owned is None:
                return False
            for table in (TransactionRow, PositionRow):
                await session.execute(delete(table).where(table.connection_id == connection_id))
            await session.execute(
                delete(AccountRow).where(AccountRow.connection_id == connection_id)
            )
            await session.execute(delete(TokenRow).where(TokenRow.connection_id == connection_id))
            await session.execute(delete(StartRow).where(StartRow.connection_id == connection_id))
            await session.execute(delete(ConnectionRow).where(ConnectionRow.id == connection_id))
            return True

    async def tokens(self, connection_id: str) -> SealedTokens | None:
        """A connection's sealed tokens."""
        async with self._db.session() as session:
            row = await session.get(TokenRow, connection_id)
            return None if row is None else records.tokens(row)

    async def store_tokens(self, connection_id: str, owner: str, tokens: SealedTokens) -> bool:
        """Replace refreshed tokens while `owner` holds the connection's sync lease."""
        async with self._db.session() as session:
            held = await session.scalar(
                select(ConnectionRow.id).where(
                    ConnectionRow.id == connection_id, ConnectionRow.lease_owner == owner
                )
            )
            if held is None:
                return False
            await session.execute(
                update(TokenRow)
                .where(TokenRow.connection_id == connection_id)
                .values(**records.token_values(tokens))
            )
            return True

    # --- syncs -------------------------------------------------------------------------------

    async def queue_sync(self, user_id: str, connection_id: str, now: datetime) -> bool:
        """Queue a sync unless one is queued or running or the user must act; whether queued."""
        async with self._db.session() as session:
            changed = await session.execute(
                update(ConnectionRow)
                .where(
                    ConnectionRow.id == connection_id,
                    ConnectionRow.user_id == user_id,
                    ConnectionRow.sync_state.not_in(_BUSY),
                    ConnectionRow.status.not_in(_NEEDS_USER),
                )
                .values(
                    status=ConnectionStatus.SYNCING.value,
                    sync_state=SyncState.QUEUED.value,
                    sync_create_time=now,
                    sync_start_time=None,
                    next_sync_time=now,
                    update_time=now,
                )
            )
            return _rowcount(changed) == 1

    async def claim_due(
        self, owner: str, now: datetime, lease: timedelta, limit: int
    ) -> list[Connection]:
        """Lease up to `limit` connections due for a sync to `owner`. On PostgreSQL the rows are
        locked with SKIP LOCKED, so racing workers pick disjoint sets; the lease condition in the
        UPDATE keeps a connection with one worker until its lease ends either way."""
        free = or_(ConnectionRow.lease_until.is_(None), ConnectionRow.lease_until < now)
        due = (
            select(ConnectionRow.id)
            .where(
                ConnectionRow.next_sync_time <= now,
                ConnectionRow.status.not_in(_NEEDS_USER),
                free,
            )
            .order_by(ConnectionRow.next_sync_time, ConnectionRow.id)
            .limit(limit)
        )
        if not self._db.is_sqlite:
            due = due.with_for_update(skip_locked=True)
        async with self._db.session() as session:
            ids = list(await session.scalars(due))
            if not ids:
                return []
            await session.execute(
                update(ConnectionRow)
                .where(ConnectionRow.id.in_(ids), free)
                .values(
                    lease_owner=owner,
                    lease_until=now + lease,
                    status=ConnectionStatus.SYNCING.value,
                    sync_state=SyncState.RUNNING.value,
                    sync_create_time=func.coalesce(ConnectionRow.sync_create_time, now),
                    sync_start_time=now,
                    update_time=now,
                )
            )
            rows = await session.scalars(
                select(ConnectionRow).where(
                    ConnectionRow.id.in_(ids), ConnectionRow.lease_owner == owner
                )
            )
            return [records.connection(r) for r in rows]

    async def finish_sync(
        self,
        connection_id: str,
        owner: str,
        outcome: SyncOutcome,
        now: datetime,
        snapshot: Snapshot | None = None,
    ) -> bool:
        """End `owner`'s sync: with a snapshot, replace the connection's accounts and positions
        and upsert its transactions, all in this one transaction; without one, keep the previous
        data. False (nothing written) when the lease was lost."""
        async with self._db.session() as session:
            values: dict[str, object] = {
                "status": outcome.status.value,
                "status_message": outcome.status_message,
                "last_sync_time": now,
                "last_sync_result": outcome.result.value,
                "last_sync_error": outcome.error_message,
                "sync_state": SyncState.UNSPECIFIED.value,
                "sync_create_time": None,
                "sync_start_time": None,
                "next_sync_time": outcome.next_sync_time,
                "lease_owner": None,
                "lease_until": None,
                "update_time": now,
            }
            if snapshot is not None:
                values["last_successful_sync_time"] = now
                values["account_count"] = len(snapshot.accounts)
            # First, so the row stays locked (PostgreSQL) while the snapshot is written.
            held = await session.execute(
                update(ConnectionRow)
                .where(ConnectionRow.id == connection_id, ConnectionRow.lease_owner == owner)
                .values(**values)
            )
            if _rowcount(held) != 1:
                return False
            if snapshot is not None:
                user_id = await session.scalar(
                    select(ConnectionRow.user_id).where(ConnectionRow.id == connection_id)
                )
                assert user_id is not None
                await _write_snapshot(session, connection_id, user_id, snapshot, now)
            return True

    async def mark_reauth_due(self, now: datetime, warning: timedelta) -> int:
        """Connections whose authorisation ends within `warning` (or has ended) and that no
        worker holds: REAUTH_REQUIRED now, with their time kept in reauth_required_time."""
        async with self._db.session() as session:
            changed = await session.execute(
                update(ConnectionRow)
                .where(
                    ConnectionRow.reauth_required_time.is_not(None),
                    ConnectionRow.reauth_required_time <= now + warning,
                    ConnectionRow.status.not_in(_NEEDS_USER),
                    or_(ConnectionRow.lease_until.is_(None), ConnectionRow.lease_until < now),
                )
                .values(
                    status=ConnectionStatus.REAUTH_REQUIRED.value,
                    status_message=REAUTH_SOON_MESSAGE,
                    sync_state=SyncState.UNSPECIFIED.value,
                    sync_create_time=None,
                    sync_start_time=None,
                    next_sync_time=None,
                    update_time=now,
                )
            )
            return _rowcount(changed)

    # --- synced data -------------------------------------------------------------------------

    async def accounts(self, user_id: str, connection_id: str | None = None) -> list[Account]:
        """The user's accounts (of one connection), unordered."""
        query = select(AccountRow).where(AccountRow.user_id == user_id)
        if connection_id is not None:
            query = query.where(AccountRow.connection_id == connection_id)
        async with self._db.session() as session:
            return [records.account(r) for r in await session.scalars(query)]

    async def positions(
        self, user_id: str, connection_id: str | None = None, account_id: str | None = None
    ) -> list[StoredPosition]:
        """The user's positions (of one connection or account), unordered."""
        query = select(PositionRow).where(PositionRow.user_id == user_id)
        if connection_id is not None:
            query = query.where(PositionRow.connection_id == connection_id)
        if account_id is not None:
            query = query.where(PositionRow.account_id == account_id)
        async with self._db.session() as session:
            return [records.position(r) for r in await session.scalars(query)]

    async def transactions(
        self,
        user_id: str,
        where: TransactionFilter,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[StoredTransaction]:
        """The user's transactions newest first (time, then id, descending), after a cursor."""
        row = TransactionRow
        query = select(row).where(row.user_id == user_id)
        if where.connection_id is not None:
            query = query.where(row.connection_id == where.connection_id)
        if where.account_id is not None:
            query = query.where(row.account_id == where.account_id)
        if where.start is not None:
            query = query.where(row.transaction_time >= where.start)
        if where.end is not None:
            query = query.where(row.transaction_time < where.end)
        if where.types:
            query = query.where(row.type.in_(where.types))
        if where.symbol:
            query = query.where(or_(row.symbol == where.symbol, row.underlying == where.symbol))
        if after is not None:
            at, last = after
            query = query.where(
                or_(row.transaction_time < at, and_(row.transaction_time == at, row.id < last))
            )
        query = query.order_by(row.transaction_time.desc(), row.id.desc()).limit(limit)
        async with self._db.session() as session:
            return [records.transaction(r) for r in await session.scalars(query)]

    # --- key rotation (tokens.SealedValueStore) ----------------------------------------------

    async def sealed_values(self, after: str | None, limit: int) -> Sequence[SealedValue]:
        """Sealed tokens in row-key order (`{connection id}/{access|refresh}`)."""
        query = select(TokenRow).order_by(TokenRow.connection_id)
        if after is not None:
            query = query.where(TokenRow.connection_id >= after.partition("/")[0])
        values: list[SealedValue] = []
        async with self._db.session() as session:
            for row in await session.scalars(query.limit(limit + 1)):
                for kind, column in _TOKEN_COLUMNS.items():
                    key = f"{row.connection_id}/{kind}"
                    if after is None or key > after:
                        values.append(
                            SealedValue(
                                key, token_context(row.connection_id, kind), getattr(row, column)
                            )
                        )
        return values[:limit]

    async def replace_sealed(self, row_key: str, expected: str, replacement: str) -> bool:
        """Conditional UPDATE of one sealed token."""
        connection_id, _, kind = row_key.partition("/")
        column = getattr(TokenRow, _TOKEN_COLUMNS["access" if kind == "access" else "refresh"])
        async with self._db.session() as session:
            changed = await session.execute(
                update(TokenRow)
                .where(TokenRow.connection_id == connection_id, column == expected)
                .values({column: replacement})
            )
            return _rowcount(changed) == 1


REAUTH_SOON_MESSAGE = "the broker sign-in expires soon; sign in again to keep syncing"


async def _write_snapshot(
    session: AsyncSession, connection_id: str, user_id: str, snapshot: Snapshot, now: datetime
) -> None:
    existing = {
        row.provider_account_id: row
        for row in await session.scalars(
            select(AccountRow).where(AccountRow.connection_id == connection_id)
        )
    }
    seen: set[str] = set()
    ids: dict[str, str] = {}
    for broker in snapshot.accounts:
        seen.add(broker.provider_account_id)
        row = existing.get(broker.provider_account_id)
        values = records.account_values(broker)
        if row is None:
            row = AccountRow(
                id=new_id(),
                connection_id=connection_id,
                user_id=user_id,
                provider_account_id=broker.provider_account_id,
                create_time=now,
                update_time=now,
                **values,
            )
            session.add(row)
        else:
            for key, value in values.items():
                setattr(row, key, value)
            row.update_time = now
        ids[broker.provider_account_id] = row.id
    gone = [row.id for key, row in existing.items() if key not in seen]
    await session.flush()
    if gone:
        for table in (TransactionRow, PositionRow):
            await session.execute(delete(table).where(table.account_id.in_(gone)))
        await session.execute(delete(AccountRow).where(AccountRow.id.in_(gone)))
    await session.execute(delete(PositionRow).where(PositionRow.connection_id == connection_id))
    for broker in snapshot.accounts:
        account_id = ids[broker.provider_account_id]
        merged: dict[str, PositionRow] = {}
        for held in broker.positions:
            price = snapshot.prices.get(held.symbol)
            merged[held.symbol] = PositionRow(
                account_id=account_id,
                symbol=held.symbol,
                user_id=user_id,
                connection_id=connection_id,
                quantity=records.text(held.quantity),
                average_cost=records.text(held.average_cost),
                price=records.text(None if price is None else price.price),
                previous_close=records.text(None if price is None else price.previous_close),
                update_time=now,
            )
        session.add_all(merged.values())
        await _upsert_transactions(
            session,
            account_id,
            connection_id,
            user_id,
            snapshot.transactions.get(broker.provider_account_id, []),
        )


async def _upsert_transactions(
    session: AsyncSession,
    account_id: str,
    connection_id: str,
    user_id: str,
    items: Sequence[BrokerTransaction],
) -> None:
    if not items:
        return
    # Only the rows this sync reported, by provider id: a long history is not read each sync.
    ids = sorted({item.provider_transaction_id for item in items})
    known: dict[str, TransactionRow] = {}
    for start in range(0, len(ids), _ID_CHUNK):
        rows = await session.scalars(
            select(TransactionRow).where(
                TransactionRow.account_id == account_id,
                TransactionRow.provider_transaction_id.in_(ids[start : start + _ID_CHUNK]),
            )
        )
        known.update((row.provider_transaction_id, row) for row in rows)
    for item in items:
        values = records.transaction_values(item)
        row = known.get(item.provider_transaction_id)
        if row is None:
            row = TransactionRow(
                id=new_id(),
                account_id=account_id,
                user_id=user_id,
                connection_id=connection_id,
                provider_transaction_id=item.provider_transaction_id,
                **values,
            )
            session.add(row)
            known[item.provider_transaction_id] = row
        else:
            # Only changed columns reach the UPDATE (the ORM compares), so a re-sync is cheap.
            for key, value in values.items():
                if getattr(row, key) != value:
                    setattr(row, key, value)
