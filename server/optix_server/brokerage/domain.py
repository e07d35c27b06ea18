"""The brokerage slice's domain values: plain dataclasses, money as exact Decimal."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from optix_server.brokerage.connectors.models import (
    AccountType,
    BrokerAccount,
    BrokerTransaction,
    PositionEffect,
    TransactionType,
)


class ConnectionStatus(enum.Enum):
    """A connection's health (values match optix.brokerage.v1.ConnectionStatus)."""

    ACTIVE = 1
    SYNCING = 2
    REAUTH_REQUIRED = 3
    ERROR = 4
    REVOKED = 5


class SyncState(enum.Enum):
    """A sync's progress (values match optix.brokerage.v1.SyncState)."""

    UNSPECIFIED = 0
    QUEUED = 1
    RUNNING = 2
    DONE = 3
    FAILED = 4


# Statuses that no sync can help: the user must sign in at the broker again (or delete).
NEEDS_USER = frozenset({ConnectionStatus.REAUTH_REQUIRED, ConnectionStatus.REVOKED})


@dataclass(frozen=True, slots=True)
class Sync:
    """One sync of one connection, as PortfolioSync shows it."""

    connection_id: str
    user_id: str
    state: SyncState
    create_time: datetime
    start_time: datetime | None = None
    end_time: datetime | None = None
    error_message: str = ""


@dataclass(frozen=True, slots=True)
class Connection:
    """A user's link to one provider login."""

    id: str
    user_id: str
    provider: str
    display_name: str
    status: ConnectionStatus
    create_time: datetime
    update_time: datetime
    status_message: str = ""
    reauth_required_time: datetime | None = None
    last_sync_time: datetime | None = None
    last_sync_result: SyncState = SyncState.UNSPECIFIED
    last_sync_error: str = ""
    last_successful_sync_time: datetime | None = None
    account_count: int = 0
    # The sync queued or running now (QUEUED/RUNNING), else UNSPECIFIED.
    sync_state: SyncState = SyncState.UNSPECIFIED
    sync_create_time: datetime | None = None
    sync_start_time: datetime | None = None

    def current_sync(self) -> Sync | None:
        """The sync queued or running now, if any."""
        if self.sync_state not in (SyncState.QUEUED, SyncState.RUNNING):
            return None
        return Sync(
            self.id,
            self.user_id,
            self.sync_state,
            self.sync_create_time or self.update_time,
            self.sync_start_time,
        )


@dataclass(frozen=True, slots=True)
class PendingStart:
    """What StartConnection keeps until CompleteConnection redeems the state."""

    state_hash: str
    user_id: str
    provider: str
    # Set when re-authorising an existing connection.
    connection_id: str | None
    redirect_uri: str
    # The PKCE verifier, sealed with TokenBox (it is a secret until redeemed).
    sealed_verifier: str = field(repr=False)
    display_name: str
    expire_time: datetime


@dataclass(frozen=True, slots=True)
class SealedTokens:
    """A connection's tokens as stored: sealed, with their expiry times in the clear."""

    sealed_access: str = field(repr=False)
    sealed_refresh: str = field(repr=False)
    access_expire_time: datetime | None
    refresh_expire_time: datetime | None


@dataclass(frozen=True, slots=True)
class Account:
    """A synced brokerage account with its balances."""

    id: str
    connection_id: str
    user_id: str
    provider_account_id: str
    display_name: str
    number_last4: str
    type: AccountType
    currency_code: str
    cash: Decimal
    buying_power: Decimal | None
    liquidation_value: Decimal | None
    create_time: datetime
    update_time: datetime


@dataclass(frozen=True, slots=True)
class StoredPosition:
    """A synced position with the price recorded at the sync (for when quotes are down)."""

    account_id: str
    connection_id: str
    symbol: str
    quantity: Decimal
    average_cost: Decimal | None
    # Per share at the sync (the provider's mark, else the quote then); None when unknown.
    price: Decimal | None
    previous_close: Decimal | None
    update_time: datetime


@dataclass(frozen=True, slots=True)
class StoredTransaction:
    """A synced transaction."""

    id: str
    account_id: str
    connection_id: str
    user_id: str
    provider_transaction_id: str
    type: TransactionType
    time: datetime
    symbol: str
    quantity: Decimal | None
    price: Decimal | None
    amount: Decimal
    fees: Decimal
    position_effect: PositionEffect
    description: str


@dataclass(frozen=True, slots=True)
class SyncedPrice:
    """A symbol's price and previous close at sync time."""

    price: Decimal | None
    previous_close: Decimal | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one complete sync fetched; written in one transaction or not at all."""

    accounts: tuple[BrokerAccount, ...]
    # provider account id -> its transactions in the synced window.
    transactions: dict[str, list[BrokerTransaction]]
    prices: dict[str, SyncedPrice]
