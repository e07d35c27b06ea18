"""Pricing and merging a portfolio: synced positions valued at current quotes (or at the last
synced prices when market data is down), P/L, day change and Greeks, summed per account and
over everything. Pure functions of their inputs; money stays exact Decimal."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from optix.marketdata.v1 import quote_pb2
from optix_server.brokerage.connectors.models import (
    EQUITY_MULTIPLIER,
    STANDARD_OPTION_MULTIPLIER,
)
from optix_server.brokerage.domain import Account, Connection, StoredPosition, SyncedPrice
from optix_server.brokerage.money import to_decimal
from optix_server.common.occ import is_option_symbol, parse_occ

ZERO = Decimal(0)
PRICE_STEP = Decimal("0.000001")
HUNDRED = Decimal(100)


class PriceSource(enum.Enum):
    """Where a price came from (values match optix.brokerage.v1.PriceSource)."""

    QUOTE = 1
    LAST_SYNC = 2


@dataclass(frozen=True, slots=True)
class Greeks:
    """Position Greeks (contract Greeks x quantity x multiplier), or their sums."""

    delta: float = 0.0
    delta_dollars: float = 0.0
    gamma: float = 0.0
    theta: float = 0.0
    vega: float = 0.0
    missing_count: int = 0

    def __add__(self, other: Greeks) -> Greeks:
        return Greeks(
            self.delta + other.delta,
            self.delta_dollars + other.delta_dollars,
            self.gamma + other.gamma,
            self.theta + other.theta,
            self.vega + other.vega,
            self.missing_count + other.missing_count,
        )


MISSING = Greeks(missing_count=1)


def percent(part: Decimal, whole: Decimal) -> float:
    """`part` as a percentage of |whole|; 0 when whole is 0 (display only, hence float)."""
    return 0.0 if whole.is_zero() else float(part / abs(whole) * HUNDRED)


@dataclass(frozen=True, slots=True)
class Totals:
    """Sums over positions; percentages come from the sums."""

    market_value: Decimal = ZERO
    cost_basis: Decimal = ZERO
    unrealized: Decimal = ZERO
    day_change: Decimal = ZERO
    previous_value: Decimal = ZERO

    def __add__(self, other: Totals) -> Totals:
        return Totals(
            self.market_value + other.market_value,
            self.cost_basis + other.cost_basis,
            self.unrealized + other.unrealized,
            self.day_change + other.day_change,
            self.previous_value + other.previous_value,
        )

    @property
    def unrealized_percent(self) -> float:
        """Unrealised P/L as a percentage of the cost basis."""
        return percent(self.unrealized, self.cost_basis)

    @property
    def day_change_percent(self) -> float:
        """Day change as a percentage of the value at the previous close."""
        return percent(self.day_change, self.previous_value)


@dataclass(frozen=True, slots=True)
class Valued:
    """A position priced: one account's, or (account None) merged across accounts."""

    account: Account | None
    symbol: str
    quantity: Decimal
    multiplier: int
    average_cost: Decimal
    price: Decimal
    source: PriceSource
    totals: Totals
    # None for an option market data has no Greeks for.
    greeks: Greeks | None
    update_time: datetime


@dataclass(frozen=True, slots=True)
class AccountFigures:
    """One account's balances and sums within a portfolio."""

    account: Account
    connection: Connection
    cash: Decimal
    buying_power: Decimal
    totals: Totals
    greeks: Greeks
    position_count: int

    @property
    def total_value(self) -> Decimal:
        """Cash plus the market value of the positions."""
        return self.cash + self.totals.market_value


@dataclass(frozen=True, slots=True)
class PortfolioView:
    """The merged portfolio."""

    user_id: str
    positions: list[Valued]
    accounts: list[AccountFigures]
    totals: Totals
    greeks: Greeks
    quotes_unavailable: bool
    as_of: datetime | None
    cash: Decimal = ZERO
    buying_power: Decimal = ZERO
    currency_code: str = "USD"
    by_account: dict[str, list[Valued]] = field(default_factory=dict)

    @property
    def total_value(self) -> Decimal:
        """Cash plus the market value of every position."""
        return self.cash + self.totals.market_value


def multiplier_of(symbol: str) -> int:
    """Shares per unit: 100 for a listed option, 1 for an equity."""
    return STANDARD_OPTION_MULTIPLIER if is_option_symbol(symbol) else EQUITY_MULTIPLIER


def underlying_of(symbol: str) -> str:
    """The option's root, or the ticker itself."""
    return parse_occ(symbol).root if is_option_symbol(symbol) else symbol


def _quoted(value: float) -> Decimal | None:
    # Quotes are doubles (5.609999999999999 for 5.61): rounded to a millionth, finer than any
    # price increment, so the price shown is the one every value is computed from.
    return to_decimal(value).quantize(PRICE_STEP, rounding=ROUND_HALF_EVEN) if value > 0 else None


def quote_price(quote: quote_pb2.Quote) -> SyncedPrice:
    """A quote's price (its mark, else the last trade) and previous close, as exact decimals."""
    return SyncedPrice(
        _quoted(quote.mark if quote.mark > 0 else quote.last), _quoted(quote.previous_close)
    )


def _greeks(
    symbol: str, quantity: Decimal, multiplier: int, price: Decimal, quote: quote_pb2.Quote | None
) -> Greeks | None:
    size = float(quantity) * multiplier
    if not is_option_symbol(symbol):
        return Greeks(delta=size, delta_dollars=size * float(price))
    if quote is None or not quote.HasField("option_analytics"):
        return None
    analytics = quote.option_analytics
    if analytics.status != quote_pb2.OPTION_ANALYTICS_STATUS_OK:
        return None
    delta = analytics.delta * size
    return Greeks(
        delta=delta,
        delta_dollars=delta * analytics.underlying_price,
        gamma=analytics.gamma * size,
        theta=analytics.theta * size,
        vega=analytics.vega * size,
    )


def value_position(
    account: Account,
    held: StoredPosition,
    quote: quote_pb2.Quote | None,
    now: datetime,
) -> Valued:
    """One account's position at `quote` (or at its synced price without one)."""
    multiplier = multiplier_of(held.symbol)
    live = quote_price(quote) if quote is not None else SyncedPrice(None, None)
    if live.price is not None:
        price, close, source, when = live.price, live.previous_close, PriceSource.QUOTE, now
    else:
        price = held.price if held.price is not None else (held.average_cost or ZERO)
        close, source, when = held.previous_close, PriceSource.LAST_SYNC, held.update_time
    size = held.quantity * multiplier
    average = held.average_cost or ZERO
    cost = average * abs(size)
    value = price * size
    unrealized = value - cost if held.quantity >= 0 else cost + value
    previous = (close * size) if close is not None else value
    totals = Totals(value, cost, unrealized, value - previous, previous)
    greeks = _greeks(held.symbol, held.quantity, multiplier, price, quote)
    return Valued(
        account,
        held.symbol,
        held.quantity,
        multiplier,
        average,
        price,
        source,
        totals,
        greeks,
        when,
    )


def _sum_greeks(items: Iterable[Valued]) -> Greeks:
    total = Greeks()
    for item in items:
        total = total + (item.greeks if item.greeks is not None else MISSING)
    return total


def merge(items: Sequence[Valued]) -> Valued:
    """Positions in one symbol summed across accounts."""
    first = items[0]
    quantity = sum((i.quantity for i in items), ZERO)
    totals = sum((i.totals for i in items), Totals())
    units = abs(quantity) * first.multiplier
    greeks_known = [i.greeks for i in items if i.greeks is not None]
    return Valued(
        account=None,
        symbol=first.symbol,
        quantity=quantity,
        multiplier=first.multiplier,
        average_cost=ZERO if units.is_zero() else totals.cost_basis / units,
        price=first.price,
        source=(
            PriceSource.LAST_SYNC
            if any(i.source is PriceSource.LAST_SYNC for i in items)
            else PriceSource.QUOTE
        ),
        totals=totals,
        greeks=sum(greeks_known, Greeks()) if len(greeks_known) == len(items) else None,
        update_time=min(i.update_time for i in items),
    )


def build_portfolio(
    user_id: str,
    connections: Sequence[Connection],
    accounts: Sequence[Account],
    positions: Sequence[StoredPosition],
    quotes: Mapping[str, quote_pb2.Quote] | None,
    now: datetime,
) -> PortfolioView:
    """Every account and position valued (quotes None: market data was unavailable)."""
    order = {c.id: i for i, c in enumerate(connections)}
    by_id = {c.id: c for c in connections}
    ordered = sorted(
        (a for a in accounts if a.connection_id in by_id),
        key=lambda a: (order[a.connection_id], a.display_name, a.id),
    )
    held: dict[str, list[StoredPosition]] = {}
    for p in positions:
        held.setdefault(p.account_id, []).append(p)
    figures: list[AccountFigures] = []
    by_account: dict[str, list[Valued]] = {}
    by_symbol: dict[str, list[Valued]] = {}
    for account in ordered:
        valued = [
            value_position(account, p, None if quotes is None else quotes.get(p.symbol), now)
            for p in sorted(held.get(account.id, []), key=lambda p: p.symbol)
        ]
        by_account[account.id] = valued
        for v in valued:
            by_symbol.setdefault(v.symbol, []).append(v)
        figures.append(
            AccountFigures(
                account=account,
                connection=by_id[account.connection_id],
                cash=account.cash,
                buying_power=account.buying_power or ZERO,
                totals=sum((v.totals for v in valued), Totals()),
                greeks=_sum_greeks(valued),
                position_count=len(valued),
            )
        )
    merged = [merge(by_symbol[s]) for s in sorted(by_symbol)]
    return PortfolioView(
        user_id=user_id,
        positions=merged,
        accounts=figures,
        totals=sum((f.totals for f in figures), Totals()),
        greeks=sum((f.greeks for f in figures), Greeks()),
        quotes_unavailable=quotes is None,
        as_of=min((a.update_time for a in ordered), default=None),
        cash=sum((f.cash for f in figures), ZERO),
        buying_power=sum((f.buying_power for f in figures), ZERO),
        by_account=by_account,
    )
