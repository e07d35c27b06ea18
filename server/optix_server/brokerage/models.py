"""Tables of the brokerage slice: OAuth starts, connections with their sync lease, sealed
tokens, and the last complete snapshot of accounts, positions and transactions.

Money and quantities are stored as decimal text (exact on SQLite and PostgreSQL alike); they
are never compared in SQL.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from optix_server.infra.db import Base, UtcDateTime


class StartRow(Base):
    """A pending StartConnection: keyed by the state's hash (the state itself is never stored),
    bound to the user, the redirect URI and the sealed PKCE verifier. Deleted when redeemed."""

    __tablename__ = "brokerage_starts"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32))
    provider: Mapped[str] = mapped_column(String(32))
    connection_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    redirect_uri: Mapped[str] = mapped_column(Text)
    sealed_verifier: Mapped[str] = mapped_column(Text)
    display_name: Mapped[str] = mapped_column(String(64))
    expire_time: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class ConnectionRow(Base):
    """A connection, its current sync (queued/running) and the lease of the worker running it."""

    __tablename__ = "brokerage_connections"
    __table_args__ = (
        Index("brokerage_connection_order", "user_id", "create_time", "id"),
        Index("brokerage_connection_due", "next_sync_time"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32))
    provider: Mapped[str] = mapped_column(String(32))
    display_name: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    status_message: Mapped[str] = mapped_column(Text)
    reauth_required_time: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_sync_time: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_sync_result: Mapped[int] = mapped_column(Integer)
    last_sync_error: Mapped[str] = mapped_column(Text)
    last_successful_sync_time: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    account_count: Mapped[int] = mapped_column(Integer)
    # The sync in progress: QUEUED or RUNNING, UNSPECIFIED when none.
    sync_state: Mapped[int] = mapped_column(Integer)
    sync_create_time: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    sync_start_time: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # When the worker should next sync it (periodic, or now when queued); NULL: never.
    next_sync_time: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(32), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    create_time: Mapped[datetime] = mapped_column(UtcDateTime())
    update_time: Mapped[datetime] = mapped_column(UtcDateTime())


class TokenRow(Base):
    """A connection's provider tokens, sealed with TokenBox (never plaintext)."""

    __tablename__ = "brokerage_tokens"

    connection_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("brokerage_connections.id", ondelete="CASCADE"), primary_key=True
    )
    sealed_access: Mapped[str] = mapped_column(Text)
    sealed_refresh: Mapped[str] = mapped_column(Text)
    access_expire_time: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    refresh_expire_time: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class AccountRow(Base):
    """One brokerage account of a connection, with its balances as of the last sync."""

    __tablename__ = "brokerage_accounts"
    __table_args__ = (
        UniqueConstraint("connection_id", "provider_account_id"),
        Index("brokerage_account_order", "user_id", "connection_id", "display_name", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    connection_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("brokerage_connections.id", ondelete="CASCADE")
    )
    user_id: Mapped[str] = mapped_column(String(32))
    provider_account_id: Mapped[str] = mapped_column(String(128))
    display_name: Mapped[str] = mapped_column(String(128))
    number_last4: Mapped[str] = mapped_column(String(4))
    type: Mapped[int] = mapped_column(Integer)
    currency_code: Mapped[str] = mapped_column(String(3))
    cash: Mapped[str] = mapped_column(String(64))
    buying_power: Mapped[str | None] = mapped_column(String(64), nullable=True)
    liquidation_value: Mapped[str | None] = mapped_column(String(64), nullable=True)
    create_time: Mapped[datetime] = mapped_column(UtcDateTime())
    update_time: Mapped[datetime] = mapped_column(UtcDateTime())


class PositionRow(Base):
    """One account's holding of one symbol, with the price recorded when it was synced."""

    __tablename__ = "brokerage_positions"

    account_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("brokerage_accounts.id", ondelete="CASCADE"), primary_key=True
    )
    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), index=True)
    connection_id: Mapped[str] = mapped_column(String(32))
    quantity: Mapped[str] = mapped_column(String(64))
    average_cost: Mapped[str | None] = mapped_column(String(64), nullable=True)
    price: Mapped[str | None] = mapped_column(String(64), nullable=True)
    previous_close: Mapped[str | None] = mapped_column(String(64), nullable=True)
    update_time: Mapped[datetime] = mapped_column(UtcDateTime())


class TransactionRow(Base):
    """One entry of an account's history, unique per (account, provider transaction id)."""

    __tablename__ = "brokerage_transactions"
    __table_args__ = (
        UniqueConstraint("account_id", "provider_transaction_id"),
        Index("brokerage_transaction_order", "user_id", "transaction_time", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("brokerage_accounts.id", ondelete="CASCADE")
    )
    user_id: Mapped[str] = mapped_column(String(32))
    connection_id: Mapped[str] = mapped_column(String(32))
    provider_transaction_id: Mapped[str] = mapped_column(String(128))
    type: Mapped[int] = mapped_column(Integer)
    transaction_time: Mapped[datetime] = mapped_column(UtcDateTime())
    symbol: Mapped[str] = mapped_column(String(32))
    underlying: Mapped[str] = mapped_column(String(32))
    quantity: Mapped[str | None] = mapped_column(String(64), nullable=True)
    price: Mapped[str | None] = mapped_column(String(64), nullable=True)
    amount: Mapped[str] = mapped_column(String(64))
    fees: Mapped[str] = mapped_column(String(64))
    position_effect: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text)
