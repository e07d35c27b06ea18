"""Domain values -> optix.brokerage.v1 messages."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from google.protobuf import duration_pb2, timestamp_pb2

from optix.brokerage.v1 import (
    account_pb2,
    connection_pb2,
    portfolio_pb2,
    provider_pb2,
    transaction_pb2,
)
from optix_server.brokerage import names
from optix_server.brokerage.connectors.base import ProviderInfo
from optix_server.brokerage.domain import Account, Connection, StoredTransaction, Sync
from optix_server.brokerage.money import to_decimal_proto, to_money
from optix_server.brokerage.portfolio import (
    AccountFigures,
    Greeks,
    PortfolioView,
    Totals,
    Valued,
)
from optix_server.common.proto_values import instrument, timestamp


def _ts(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    return None if value is None else timestamp(value)


def provider(info: ProviderInfo) -> provider_pb2.Provider:
    """A Provider message."""
    message = provider_pb2.Provider(
        name=names.provider_name(info.id),
        display_name=info.display_name,
        auth_kind=provider_pb2.AuthKind.ValueType(info.auth_kind.value),
        pkce=info.pkce,
        enabled=info.enabled,
    )
    if info.authorization_lifetime is not None:
        message.authorization_lifetime.CopyFrom(
            duration_pb2.Duration(seconds=int(info.authorization_lifetime.total_seconds()))
        )
    return message


def connection(value: Connection) -> connection_pb2.Connection:
    """A Connection message (never any token)."""
    return connection_pb2.Connection(
        name=names.connection_name(value.user_id, value.id),
        provider=names.provider_name(value.provider),
        display_name=value.display_name,
        status=connection_pb2.ConnectionStatus.ValueType(value.status.value),
        status_message=value.status_message,
        reauth_required_time=_ts(value.reauth_required_time),
        last_sync_time=_ts(value.last_sync_time),
        last_sync_result=connection_pb2.SyncState.ValueType(value.last_sync_result.value),
        last_sync_error_message=value.last_sync_error,
        last_successful_sync_time=_ts(value.last_successful_sync_time),
        account_count=value.account_count,
        create_time=timestamp(value.create_time),
        update_time=timestamp(value.update_time),
    )


def sync(value: Sync) -> connection_pb2.PortfolioSync:
    """A PortfolioSync message."""
    return connection_pb2.PortfolioSync(
        connection=names.connection_name(value.user_id, value.connection_id),
        state=connection_pb2.SyncState.ValueType(value.state.value),
        create_time=timestamp(value.create_time),
        start_time=_ts(value.start_time),
        end_time=_ts(value.end_time),
        error_message=value.error_message,
    )


def account(value: Account) -> account_pb2.Account:
    """An Account message."""
    return account_pb2.Account(
        name=names.account_name(value.user_id, value.connection_id, value.id),
        display_name=value.display_name,
        account_number_last4=value.number_last4,
        type=account_pb2.AccountType.ValueType(value.type.value),
        currency_code=value.currency_code,
        create_time=timestamp(value.create_time),
        update_time=timestamp(value.update_time),
    )


def greeks(value: Greeks) -> portfolio_pb2.PositionGreeks:
    """A PositionGreeks message."""
    return portfolio_pb2.PositionGreeks(
        delta=value.delta,
        delta_dollars=value.delta_dollars,
        gamma=value.gamma,
        theta=value.theta,
        vega=value.vega,
        missing_count=value.missing_count,
    )


def totals(value: Totals, currency: str) -> portfolio_pb2.PositionTotals:
    """A PositionTotals message."""
    return portfolio_pb2.PositionTotals(
        market_value=to_money(value.market_value, currency),
        cost_basis=to_money(value.cost_basis, currency),
        unrealized_profit_loss=to_money(value.unrealized, currency),
        unrealized_profit_loss_percent=value.unrealized_percent,
        day_change=to_money(value.day_change, currency),
        day_change_percent=value.day_change_percent,
    )


def position(value: Valued, currency: str = "USD") -> portfolio_pb2.Position:
    """A Position message (merged when `value.account` is None)."""
    held = value.account
    message = portfolio_pb2.Position(
        account=""
        if held is None
        else names.account_name(held.user_id, held.connection_id, held.id),
        symbol=value.symbol,
        instrument=instrument(value.symbol),
        quantity=to_decimal_proto(value.quantity),
        average_cost=to_money(value.average_cost, currency),
        cost_basis=to_money(value.totals.cost_basis, currency),
        price=to_money(value.price, currency),
        market_value=to_money(value.totals.market_value, currency),
        unrealized_profit_loss=to_money(value.totals.unrealized, currency),
        unrealized_profit_loss_percent=value.totals.unrealized_percent,
        day_change=to_money(value.totals.day_change, currency),
        day_change_percent=value.totals.day_change_percent,
        update_time=timestamp(value.update_time),
        price_source=portfolio_pb2.PriceSource.ValueType(value.source.value),
    )
    if value.greeks is not None:
        message.greeks.CopyFrom(greeks(value.greeks))
    return message


def _balances(
    cash: Decimal, buying_power: Decimal, total: Decimal, currency: str
) -> portfolio_pb2.Balances:
    return portfolio_pb2.Balances(
        cash=to_money(cash, currency),
        buying_power=to_money(buying_power, currency),
        total_value=to_money(total, currency),
    )


def account_summary(value: AccountFigures, currency: str) -> portfolio_pb2.AccountSummary:
    """An AccountSummary message."""
    held = value.account
    return portfolio_pb2.AccountSummary(
        account=names.account_name(held.user_id, held.connection_id, held.id),
        display_name=held.display_name,
        connection=names.connection_name(held.user_id, held.connection_id),
        provider=names.provider_name(value.connection.provider),
        balances=_balances(value.cash, value.buying_power, value.total_value, currency),
        totals=totals(value.totals, currency),
        position_count=value.position_count,
        update_time=timestamp(held.update_time),
        greeks=greeks(value.greeks),
    )


def portfolio(value: PortfolioView) -> portfolio_pb2.Portfolio:
    """A Portfolio message."""
    currency = value.currency_code
    return portfolio_pb2.Portfolio(
        name=names.portfolio_name(value.user_id),
        positions=[position(p, currency) for p in value.positions],
        balances=_balances(value.cash, value.buying_power, value.total_value, currency),
        totals=totals(value.totals, currency),
        accounts=[account_summary(a, currency) for a in value.accounts],
        currency_code=currency,
        as_of_time=_ts(value.as_of),
        greeks=greeks(value.greeks),
        quotes_unavailable=value.quotes_unavailable,
    )


def transaction(value: StoredTransaction, currency: str = "USD") -> transaction_pb2.Transaction:
    """A Transaction message."""
    message = transaction_pb2.Transaction(
        name=names.transaction_name(value.user_id, value.connection_id, value.account_id, value.id),
        account=names.account_name(value.user_id, value.connection_id, value.account_id),
        provider_transaction_id=value.provider_transaction_id,
        type=transaction_pb2.TransactionType.ValueType(value.type.value),
        transaction_time=timestamp(value.time),
        symbol=value.symbol,
        amount=to_money(value.amount, currency),
        position_effect=transaction_pb2.PositionEffect.ValueType(value.position_effect.value),
        description=value.description,
    )
    if value.symbol:
        message.instrument.CopyFrom(instrument(value.symbol))
    if value.quantity is not None:
        message.quantity.CopyFrom(to_decimal_proto(value.quantity))
    if value.price is not None:
        message.price.CopyFrom(to_money(value.price, currency))
    if not value.fees.is_zero():
        message.fees.CopyFrom(to_money(value.fees, currency))
    return message
