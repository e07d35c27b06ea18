"""Schwab Trader API JSON -> connector models, defensively: a missing or mistyped field is a
ProviderUnavailable ("unexpected answer"), never a crash; instruments OPTIX cannot represent
(bonds by CUSIP, futures) are skipped."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from optix_server.brokerage.connectors.base import TokenSet
from optix_server.brokerage.connectors.errors import ProviderUnavailable
from optix_server.brokerage.connectors.models import (
    STANDARD_OPTION_MULTIPLIER,
    AccountType,
    BrokerAccount,
    BrokerBalances,
    BrokerPosition,
    BrokerTransaction,
    Holding,
    InstrumentKind,
    PositionEffect,
    TransactionType,
)
from optix_server.brokerage.money import MoneyError, to_decimal
from optix_server.common.occ import SymbolError, normalize_ticker, parse_occ
from optix_server.infra.logging import get_logger

log = get_logger(__name__)

ZERO = Decimal(0)
# Asset types held as shares: ETFs are COLLECTIVE_INVESTMENT, the sweep fund CASH_EQUIVALENT.
_SHARE_ASSETS = frozenset({"EQUITY", "COLLECTIVE_INVESTMENT", "MUTUAL_FUND", "CASH_EQUIVALENT"})
_TYPE_FROM_SCHWAB: Mapping[str, TransactionType] = MappingProxyType(
    {
        "TRADE": TransactionType.TRADE,
        # Exercises, assignments and expirations arrive as RECEIVE_AND_DELIVER.
        "RECEIVE_AND_DELIVER": TransactionType.TRADE,
        "DIVIDEND_OR_INTEREST": TransactionType.DIVIDEND_OR_INTEREST,
        "ACH_RECEIPT": TransactionType.ACH_IN,
        "ACH_DISBURSEMENT": TransactionType.ACH_OUT,
        "JOURNAL": TransactionType.JOURNAL,
    }
)
SCHWAB_TRANSACTION_TYPES = (
    "TRADE",
    "RECEIVE_AND_DELIVER",
    "DIVIDEND_OR_INTEREST",
    "ACH_RECEIPT",
    "ACH_DISBURSEMENT",
    "CASH_RECEIPT",
    "CASH_DISBURSEMENT",
    "ELECTRONIC_FUND",
    "WIRE_OUT",
    "WIRE_IN",
    "JOURNAL",
    "MEMORANDUM",
    "MARGIN_CALL",
    "MONEY_MARKET",
    "SMA_ADJUSTMENT",
)
_LONGEST_LIFETIME_SECONDS = 10 * 365 * 86400
# Transaction states that are history; canceled or invalid entries are not.
_LIVE_STATUSES = frozenset({"VALID", "PENDING", ""})


def _unexpected(what: str) -> ProviderUnavailable:
    return ProviderUnavailable(
        f"Schwab sent an unexpected answer ({what})", reason="PROVIDER_MALFORMED"
    )


def _object(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _unexpected(f"{what} is not an object")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise _unexpected(f"{what} is not a list")
    return value


def _text(value: Any, what: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value:
        raise _unexpected(f"{what} is missing")
    return value


def _number(data: Mapping[str, Any], key: str, default: Decimal | None = None) -> Decimal | None:
    value = data.get(key)
    if value is None:
        return default
    try:
        return to_decimal(value)
    except MoneyError:
        raise _unexpected(f"{key} is not a number") from None


def _first_number(data: Mapping[str, Any], *keys: str) -> Decimal | None:
    for key in keys:
        value = _number(data, key)
        if value is not None:
            return value
    return None


def _time(value: Any, what: str) -> datetime:
    text = _text(value, what)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise _unexpected(f"{what} is not a time") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def format_schwab_time(moment: datetime, *, round_up: bool = False) -> str:
    """A time as the Trader API's query parameters want it: yyyy-MM-dd'T'HH:mm:ss.SSSZ (UTC),
    truncated to milliseconds (or rounded up, for the end of a range, so nothing is cut off)."""
    utc = moment.astimezone(UTC)
    if round_up and utc.microsecond % 1000:
        utc += timedelta(microseconds=1000 - utc.microsecond % 1000)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def tokens_from_json(
    body: Any, now: datetime, refresh_lifetime: timedelta, previous: TokenSet | None
) -> TokenSet:
    """A TokenSet from a /v1/oauth/token answer. The refresh token's death stays where the
    sign-in put it (`previous`) unless Schwab states a new lifetime: refreshing never extends."""
    data = _object(body, "token answer")
    access = _text(data.get("access_token"), "access_token")
    expires_in = _number(data, "expires_in") or Decimal(1800)
    refresh = data.get("refresh_token")
    if previous is not None and not refresh:
        refresh = previous.refresh_token
    refresh = _text(refresh, "refresh_token")
    stated = _number(data, "refresh_token_expires_in")
    if stated is not None:
        refresh_expires: datetime | None = now + _seconds(stated)
    elif previous is not None:
        refresh_expires = previous.refresh_expires_at
    else:
        refresh_expires = now + refresh_lifetime
    scope = data.get("scope")
    return TokenSet(
        access_token=access,
        access_expires_at=now + _seconds(expires_in),
        refresh_token=refresh,
        refresh_expires_at=refresh_expires,
        scope=scope if isinstance(scope, str) else "",
    )


def _seconds(value: Decimal) -> timedelta:
    # Bounded, so a garbled lifetime is an unexpected answer rather than an overflow.
    if not 0 <= value <= _LONGEST_LIFETIME_SECONDS:
        raise _unexpected("a token lifetime out of range")
    return timedelta(seconds=int(value))


def account_hashes(body: Any) -> dict[str, str]:
    """accountNumbers answer -> {account number: hash value}."""
    result: dict[str, str] = {}
    for i, item in enumerate(_list(body, "accountNumbers")):
        entry = _object(item, f"accountNumbers[{i}]")
        number = _text(entry.get("accountNumber"), "accountNumber")
        result[number] = _text(entry.get("hashValue"), "hashValue")
    return result


def account_from_json(item: Any, hashes: Mapping[str, str]) -> BrokerAccount | None:
    """One entry of /accounts?fields=positions; None for an account without a hash (not
    reachable with this token)."""
    wrapper = _object(item, "account")
    account = _object(wrapper.get("securitiesAccount"), "securitiesAccount")
    number = _text(account.get("accountNumber"), "accountNumber")
    account_hash = hashes.get(number)
    if account_hash is None:
        return None
    raw_type = str(account.get("type", "")).upper()
    kind = {"CASH": AccountType.CASH, "MARGIN": AccountType.MARGIN}.get(
        raw_type, AccountType.UNSPECIFIED
    )
    last4 = number[-4:]
    label = {AccountType.CASH: "Cash", AccountType.MARGIN: "Margin"}.get(kind, "Account")
    return BrokerAccount(
        provider_account_id=account_hash,
        account_number_last4=last4,
        display_name=f"{label} ...{last4}",
        type=kind,
        currency_code="USD",
        balances=_balances(account, wrapper),
        positions=tuple(positions_from_json(account.get("positions", []))),
    )


def _balances(account: Mapping[str, Any], wrapper: Mapping[str, Any]) -> BrokerBalances:
    current = _object(account.get("currentBalances", {}), "currentBalances")
    cash = _first_number(current, "cashBalance", "totalCash") or ZERO
    # The sweep fund counts as cash (Balances.cash: "cash and money market sweep").
    cash += _number(current, "moneyMarketFund") or ZERO
    liquidation = _number(current, "liquidationValue")
    if liquidation is None and isinstance(wrapper.get("aggregatedBalance"), dict):
        liquidation = _first_number(
            wrapper["aggregatedBalance"], "currentLiquidationValue", "liquidationValue"
        )
    return BrokerBalances(
        cash=cash,
        buying_power=_first_number(
            current, "buyingPower", "cashAvailableForTrading", "availableFunds"
        ),
        liquidation_value=liquidation,
    )


def positions_of_account(body: Any) -> list[BrokerPosition]:
    """The positions of a /accounts/{hash}?fields=positions answer."""
    account = _object(_object(body, "account").get("securitiesAccount"), "securitiesAccount")
    return positions_from_json(account.get("positions", []))


def positions_from_json(items: Any) -> list[BrokerPosition]:
    """An account's `positions` list; unrepresentable instruments are skipped."""
    positions: list[BrokerPosition] = []
    for i, item in enumerate(_list(items, "positions")):
        position = _position(_object(item, f"positions[{i}]"))
        if position is not None:
            positions.append(position)
    return positions


def _holding(instrument: Mapping[str, Any]) -> Holding | None:
    asset = str(instrument.get("assetType", "")).upper()
    raw = instrument.get("symbol")
    if not isinstance(raw, str):
        return None
    try:
        if asset == "OPTION":
            contract = parse_occ(raw)
            multiplier = _number(instrument, "optionMultiplier")
            return Holding(
                symbol=contract.format(),
                kind=InstrumentKind.OPTION,
                option=contract,
                multiplier=int(multiplier) if multiplier else STANDARD_OPTION_MULTIPLIER,
            )
        if asset in _SHARE_ASSETS:
            return Holding(symbol=normalize_ticker(raw), kind=InstrumentKind.EQUITY)
    except SymbolError:
        pass
    # Logged by kind only: symbols are account data.
    log.info("schwab instrument skipped", asset_type=asset or "unknown")
    return None


def _position(item: Mapping[str, Any]) -> BrokerPosition | None:
    holding = _holding(_object(item.get("instrument"), "instrument"))
    if holding is None:
        return None
    quantity = (_number(item, "longQuantity") or ZERO) - (_number(item, "shortQuantity") or ZERO)
    if quantity > 0:
        average = _first_number(item, "averageLongPrice", "averagePrice")
    elif quantity < 0:
        average = _first_number(item, "averageShortPrice", "averagePrice")
    else:
        average = _number(item, "averagePrice")
    instrument = item["instrument"]
    description = instrument.get("description")
    return BrokerPosition(
        holding=holding,
        quantity=quantity,
        average_cost=average,
        market_value=_number(item, "marketValue"),
        description=description if isinstance(description, str) else "",
    )


def schwab_types_for(wanted: Set[TransactionType] | None) -> list[str]:
    """The Trader API `types` to ask for so that every transaction of `wanted` comes back
    (results are filtered by their mapped type afterwards)."""
    if not wanted:
        return list(SCHWAB_TRANSACTION_TYPES)
    return [
        t
        for t in SCHWAB_TRANSACTION_TYPES
        if _TYPE_FROM_SCHWAB.get(t, TransactionType.OTHER) in wanted
        or (t not in _TYPE_FROM_SCHWAB and TransactionType.FEE in wanted)
    ]


def transactions_from_json(body: Any) -> list[BrokerTransaction]:
    """A /transactions answer; canceled entries are dropped."""
    found: list[BrokerTransaction] = []
    for i, item in enumerate(_list(body, "transactions")):
        transaction = _transaction(_object(item, f"transactions[{i}]"))
        if transaction is not None:
            found.append(transaction)
    return found


def _transaction(item: Mapping[str, Any]) -> BrokerTransaction | None:
    if str(item.get("status", "")).upper() not in _LIVE_STATUSES:
        return None
    raw_type = str(item.get("type", "")).upper()
    kind = _TYPE_FROM_SCHWAB.get(raw_type, TransactionType.OTHER)
    items = [
        _object(t, "transferItems[]") for t in _list(item.get("transferItems", []), "transferItems")
    ]
    fee_items = [t for t in items if t.get("feeType")]
    fees = sum((abs(_number(t, "cost") or ZERO) for t in fee_items), ZERO)
    security = next(iter(_security_items(t for t in items if not t.get("feeType"))), None)
    if kind is TransactionType.OTHER and items and len(fee_items) == len(items):
        kind = TransactionType.FEE
    holding = quantity = price = None
    effect = PositionEffect.UNSPECIFIED
    if security is not None:
        holding, leg = security
        quantity = _number(leg, "amount")
        price = _number(leg, "price")
        effect = {
            "OPENING": PositionEffect.OPENING,
            "CLOSING": PositionEffect.CLOSING,
        }.get(str(leg.get("positionEffect", "")).upper(), PositionEffect.UNSPECIFIED)
    description = item.get("description")
    return BrokerTransaction(
        provider_transaction_id=_text(item.get("activityId"), "activityId"),
        type=kind,
        time=_time(item.get("time") or item.get("tradeDate"), "time"),
        amount=_number(item, "netAmount") or ZERO,
        holding=holding,
        quantity=quantity,
        price=price,
        fees=fees,
        position_effect=effect,
        description=description if isinstance(description, str) else "",
    )


def _security_items(
    items: Iterable[Mapping[str, Any]],
) -> Iterable[tuple[Holding, Mapping[str, Any]]]:
    for leg in items:
        instrument = leg.get("instrument")
        if not isinstance(instrument, dict):
            continue
        if str(instrument.get("assetType", "")).upper() == "CURRENCY":
            continue
        holding = _holding(instrument)
        if holding is not None:
            yield holding, leg
