"""Rows <-> domain values of the brokerage tables (decimals as exact text)."""

from __future__ import annotations

from decimal import Decimal

from optix_server.brokerage.connectors.models import (
    AccountType,
    BrokerAccount,
    BrokerTransaction,
    PositionEffect,
    TransactionType,
)
from optix_server.brokerage.domain import (
    Account,
    Connection,
    ConnectionStatus,
    PendingStart,
    SealedTokens,
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
from optix_server.brokerage.money import format_decimal


def text(value: Decimal | None) -> str | None:
    """Exact decimal text for a column (None stays None)."""
    return None if value is None else format_decimal(value)


def number(value: str | None) -> Decimal | None:
    """The Decimal of a column's text (None stays None)."""
    return None if value is None else Decimal(value)


def start(row: StartRow) -> PendingStart:
    """A pending start from its row."""
    return PendingStart(
        state_hash=row.state_hash,
        user_id=row.user_id,
        provider=row.provider,
        connection_id=row.connection_id,
        redirect_uri=row.redirect_uri,
        sealed_verifier=row.sealed_verifier,
        display_name=row.display_name,
        expire_time=row.expire_time,
    )


def start_row(value: PendingStart) -> StartRow:
    """The row of a pending start."""
    return StartRow(
        state_hash=value.state_hash,
        user_id=value.user_id,
        provider=value.provider,
        connection_id=value.connection_id,
        redirect_uri=value.redirect_uri,
        sealed_verifier=value.sealed_verifier,
        display_name=value.display_name,
        expire_time=value.expire_time,
    )


def connection(row: ConnectionRow) -> Connection:
    """A connection from its row."""
    return Connection(
        id=row.id,
        user_id=row.user_id,
        provider=row.provider,
        display_name=row.display_name,
        status=ConnectionStatus(row.status),
        create_time=row.create_time,
        update_time=row.update_time,
        status_message=row.status_message,
        reauth_required_time=row.reauth_required_time,
        last_sync_time=row.last_sync_time,
        last_sync_result=SyncState(row.last_sync_result),
        last_sync_error=row.last_sync_error,
        last_successful_sync_time=row.last_successful_sync_time,
        account_count=row.account_count,
        sync_state=SyncState(row.sync_state),
        sync_create_time=row.sync_create_time,
        sync_start_time=row.sync_start_time,
    )


def connection_row(value: Connection) -> ConnectionRow:
    """The row of a new connection (queued for its first sync)."""
    return ConnectionRow(
        id=value.id,
        user_id=value.user_id,
        provider=value.provider,
        display_name=value.display_name,
        status=value.status.value,
        status_message=value.status_message,
        reauth_required_time=value.reauth_required_time,
        last_sync_time=value.last_sync_time,
        last_sync_result=value.last_sync_result.value,
        last_sync_error=value.last_sync_error,
        last_successful_sync_time=value.last_successful_sync_time,
        account_count=value.account_count,
        sync_state=value.sync_state.value,
        sync_create_time=value.sync_create_time,
        sync_start_time=value.sync_start_time,
        next_sync_time=value.sync_create_time,
        lease_owner=None,
        lease_until=None,
        create_time=value.create_time,
        update_time=value.update_time,
    )


def tokens(row: TokenRow) -> SealedTokens:
    """Sealed tokens from their row."""
    return SealedTokens(
        sealed_access=row.sealed_access,
        sealed_refresh=row.sealed_refresh,
        access_expire_time=row.access_expire_time,
        refresh_expire_time=row.refresh_expire_time,
    )


def token_values(value: SealedTokens) -> dict[str, object]:
    """The token columns of sealed tokens."""
    return {
        "sealed_access": value.sealed_access,
        "sealed_refresh": value.sealed_refresh,
        "access_expire_time": value.access_expire_time,
        "refresh_expire_time": value.refresh_expire_time,
    }


def account(row: AccountRow) -> Account:
    """An account from its row."""
    return Account(
        id=row.id,
        connection_id=row.connection_id,
        user_id=row.user_id,
        provider_account_id=row.provider_account_id,
        display_name=row.display_name,
        number_last4=row.number_last4,
        type=AccountType(row.type),
        currency_code=row.currency_code,
        cash=Decimal(row.cash),
        buying_power=number(row.buying_power),
        liquidation_value=number(row.liquidation_value),
        create_time=row.create_time,
        update_time=row.update_time,
    )


def account_values(value: BrokerAccount) -> dict[str, object]:
    """The synced columns of an account."""
    return {
        "display_name": value.display_name[:128],
        "number_last4": value.account_number_last4[-4:],
        "type": value.type.value,
        "currency_code": value.currency_code,
        "cash": format_decimal(value.balances.cash),
        "buying_power": text(value.balances.buying_power),
        "liquidation_value": text(value.balances.liquidation_value),
    }


def position(row: PositionRow) -> StoredPosition:
    """A position from its row."""
    return StoredPosition(
        account_id=row.account_id,
        connection_id=row.connection_id,
        symbol=row.symbol,
        quantity=Decimal(row.quantity),
        average_cost=number(row.average_cost),
        price=number(row.price),
        previous_close=number(row.previous_close),
        update_time=row.update_time,
    )


def transaction(row: TransactionRow) -> StoredTransaction:
    """A transaction from its row."""
    return StoredTransaction(
        id=row.id,
        account_id=row.account_id,
        connection_id=row.connection_id,
        user_id=row.user_id,
        provider_transaction_id=row.provider_transaction_id,
        type=TransactionType(row.type),
        time=row.transaction_time,
        symbol=row.symbol,
        quantity=number(row.quantity),
        price=number(row.price),
        amount=Decimal(row.amount),
        fees=Decimal(row.fees),
        position_effect=PositionEffect(row.position_effect),
        description=row.description,
    )


def transaction_values(value: BrokerTransaction) -> dict[str, object]:
    """The synced columns of a transaction (what a re-sync may change)."""
    holding = value.holding
    return {
        "type": value.type.value,
        "transaction_time": value.time,
        "symbol": "" if holding is None else holding.symbol,
        "underlying": "" if holding is None else holding.underlying,
        "quantity": text(value.quantity),
        "price": text(value.price),
        "amount": format_decimal(value.amount),
        "fees": format_decimal(value.fees),
        "position_effect": value.position_effect.value,
        "description": value.description[:2000],
    }
