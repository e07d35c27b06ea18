"""The paper broker's demo book: a deterministic account per user, a function of (user, when the
account was opened, now) and nothing else.

At the opening, cash is deposited and three equities bought. Each month the book holds three
option legs (a long call, a short put and a protective SPY put) on the monthly expiration two
months out, opened on the month's first weekday and closed (rolled) on the next month's, so
positions always name contracts the market data's simulated listing has: third-Friday monthlies
a year ahead, strikes on every strike step (multiples of 10) within 30% of the reference price.
Cash is exactly the sum of the transactions. Prices here are the broker's fills and costs only;
current values come from market data in the portfolio.
"""

from __future__ import annotations

import calendar
import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

from optix_server.brokerage.connectors.models import (
    STANDARD_OPTION_MULTIPLIER,
    BrokerPosition,
    BrokerTransaction,
    Holding,
    InstrumentKind,
    PositionEffect,
    TransactionType,
)
from optix_server.common.exchange_calendar import us_options_calendar
from optix_server.common.occ import OccSymbol, OptionRight

CENT = Decimal("0.01")
NICKEL = Decimal("0.05")
STRIKE_GRID = Decimal(10)
CONTRACT_FEE = Decimal("0.65")
HEDGE_TICKER = "SPY"
# Rolls happen at the US open (14:30 UTC in winter; close enough for a demo either way).
ROLL_TIME = time(14, 30, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class DemoTicker:
    """A ticker the demo may hold and the price its options are listed around."""

    ticker: str
    reference_price: Decimal


# The market data slice's default simulated universe (its initial prices), which lists options
# around exactly these prices. A deployment with another universe passes its own.
DEFAULT_UNIVERSE: tuple[DemoTicker, ...] = tuple(
    DemoTicker(t, Decimal(p))
    for t, p in (
        ("AAPL", "190"),
        ("MSFT", "410"),
        ("NVDA", "120"),
        ("AMZN", "180"),
        ("GOOGL", "165"),
        ("QQQ", "470"),
        ("SPY", "540"),
    )
)


@dataclass(frozen=True, slots=True)
class DemoBook:
    """Everything the paper account shows at one moment."""

    cash: Decimal
    positions: tuple[BrokerPosition, ...]
    transactions: tuple[BrokerTransaction, ...]
    account_last4: str


@dataclass(frozen=True, slots=True)
class _Leg:
    ticker: DemoTicker
    right: OptionRight
    # Strike as a fraction of the reference price, and the direction it is rounded to the grid.
    moneyness: Decimal
    quantity: int


def _rng(*parts: object) -> random.Random:
    # hashlib, not hash(): the same user gets the same book in every process.
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def third_friday(year: int, month: int) -> date:
    """The standard monthly expiration: the month's third Friday."""
    first = date(year, month, 1)
    return first + timedelta(days=(calendar.FRIDAY - first.weekday()) % 7 + 14)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _first_weekday(month_start: date) -> date:
    day = month_start
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def _strike(reference: Decimal, moneyness: Decimal) -> Decimal:
    target = reference * moneyness / STRIKE_GRID
    rounding = ROUND_CEILING if moneyness >= 1 else ROUND_FLOOR
    return target.quantize(Decimal(1), rounding=rounding) * STRIKE_GRID


def _equities(
    subject: str, universe: Sequence[DemoTicker]
) -> list[tuple[DemoTicker, int, Decimal]]:
    rng = _rng("paper equities", subject)
    picks = rng.sample([t for t in universe if t.ticker != HEDGE_TICKER], 3)
    result = []
    for pick in picks:
        quantity = rng.choice((10, 20, 25, 40, 50, 100))
        # Bought 12% below to 6% above the reference: some winners, some losers.
        basis_points = rng.randint(-1200, 600)
        cost = (pick.reference_price * (10_000 + basis_points) / 10_000).quantize(CENT)
        result.append((pick, quantity, cost))
    return result


def _legs(subject: str, universe: Sequence[DemoTicker]) -> list[_Leg]:
    rng = _rng("paper legs", subject)
    others = [t for t in universe if t.ticker != HEDGE_TICKER]
    call_on, put_on = rng.sample(others, 2)
    hedge = next((t for t in universe if t.ticker == HEDGE_TICKER), others[0])
    return [
        _Leg(call_on, OptionRight.CALL, Decimal("1.05"), rng.choice((1, 2, 3))),
        _Leg(put_on, OptionRight.PUT, Decimal("0.92"), -1),
        _Leg(hedge, OptionRight.PUT, Decimal("0.95"), 1),
    ]


def _premium(subject: str, cycle: date, index: int, strike: Decimal) -> Decimal:
    basis_points = _rng("paper premium", subject, cycle.isoformat(), index).randint(150, 450)
    return max(NICKEL, (strike * basis_points / 10_000 / NICKEL).quantize(Decimal(1)) * NICKEL)


def _close_price(subject: str, cycle: date, index: int, opened: Decimal) -> Decimal:
    percent = _rng("paper close", subject, cycle.isoformat(), index).randint(40, 160)
    price = (opened * percent / 100 / NICKEL).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    return max(NICKEL, price * NICKEL)


def _txn_id(*parts: object) -> str:
    return hashlib.blake2b(repr(parts).encode(), digest_size=6).hexdigest()


def _cycles(opened_at: datetime, now: datetime) -> list[tuple[date, datetime]]:
    """(month, when its legs open) for every month whose legs have opened by `now`."""
    cycles: list[tuple[date, datetime]] = []
    month = date(opened_at.year, opened_at.month, 1)
    # The first legs open with the account, so a new connection shows options at once.
    start = opened_at
    while start <= now:
        cycles.append((month, start))
        month = _add_months(month, 1)
        start = datetime.combine(_first_weekday(month), ROLL_TIME)
    return cycles


def build_demo_book(
    subject: str,
    opened_at: datetime,
    now: datetime,
    *,
    universe: Sequence[DemoTicker] = DEFAULT_UNIVERSE,
    starting_cash: Decimal = Decimal(100_000),
) -> DemoBook:
    """The demo account of `subject` opened at `opened_at`, as it stands at `now`."""
    now = max(now, opened_at)
    transactions: list[BrokerTransaction] = [
        BrokerTransaction(
            provider_transaction_id=_txn_id("ach", subject, opened_at.isoformat()),
            type=TransactionType.ACH_IN,
            time=opened_at,
            amount=starting_cash,
            description="Deposit (paper)",
        )
    ]
    positions: list[BrokerPosition] = []
    for i, (pick, quantity, cost) in enumerate(_equities(subject, universe)):
        holding = Holding(pick.ticker, InstrumentKind.EQUITY)
        transactions.append(
            BrokerTransaction(
                provider_transaction_id=_txn_id("buy", subject, opened_at.isoformat(), i),
                type=TransactionType.TRADE,
                time=opened_at,
                amount=-(cost * quantity),
                holding=holding,
                quantity=Decimal(quantity),
                price=cost,
                position_effect=PositionEffect.OPENING,
                description=f"Bought {quantity} {pick.ticker} @ {cost}",
            )
        )
        positions.append(BrokerPosition(holding, Decimal(quantity), cost))
    cycles = _cycles(opened_at, now)
    legs = _legs(subject, universe)
    market_calendar = us_options_calendar()
    for c, (month, opens_at) in enumerate(cycles):
        target = _add_months(month, 2)
        # Listed the session before when the Friday is an exchange holiday (Juneteenth 2026).
        expiry = market_calendar.listed_expiration(third_friday(target.year, target.month))
        closes_at = cycles[c + 1][1] if c + 1 < len(cycles) else None
        for i, leg in enumerate(legs):
            strike = _strike(leg.ticker.reference_price, leg.moneyness)
            contract = OccSymbol.build(leg.ticker.ticker, expiry, leg.right, float(strike))
            holding = Holding(
                contract.format(), InstrumentKind.OPTION, contract, STANDARD_OPTION_MULTIPLIER
            )
            premium = _premium(subject, month, i, strike)
            fees = CONTRACT_FEE * abs(leg.quantity)
            transactions.append(
                _option_trade(
                    subject, "open", month, i, opens_at, holding, leg.quantity, premium, fees
                )
            )
            if closes_at is None:
                positions.append(BrokerPosition(holding, Decimal(leg.quantity), premium))
                continue
            price = _close_price(subject, month, i, premium)
            transactions.append(
                # Closed a minute before the next month's legs open: a roll.
                _option_trade(
                    subject,
                    "close",
                    month,
                    i,
                    closes_at - timedelta(minutes=1),
                    holding,
                    -leg.quantity,
                    price,
                    fees,
                )
            )
        if closes_at is not None:
            interest = Decimal(
                _rng("paper interest", subject, month.isoformat()).randint(500, 4000)
            )
            transactions.append(
                BrokerTransaction(
                    provider_transaction_id=_txn_id("interest", subject, month.isoformat()),
                    type=TransactionType.DIVIDEND_OR_INTEREST,
                    time=closes_at - timedelta(hours=1),
                    amount=interest * CENT,
                    description=f"Interest {month:%B %Y} (paper)",
                )
            )
    transactions.sort(key=lambda t: (t.time, t.provider_transaction_id))
    return DemoBook(
        cash=sum((t.amount for t in transactions), Decimal(0)),
        positions=tuple(sorted(positions, key=lambda p: p.symbol)),
        transactions=tuple(transactions),
        account_last4=f"{_rng('paper account', subject).randint(0, 9999):04d}",
    )


def _option_trade(
    subject: str,
    kind: str,
    month: date,
    index: int,
    when: datetime,
    holding: Holding,
    quantity: int,
    price: Decimal,
    fees: Decimal,
) -> BrokerTransaction:
    verb = "Bought" if quantity > 0 else "Sold"
    effect = PositionEffect.OPENING if kind == "open" else PositionEffect.CLOSING
    return BrokerTransaction(
        provider_transaction_id=_txn_id(kind, subject, month.isoformat(), index),
        type=TransactionType.TRADE,
        time=when,
        amount=-(price * quantity * holding.multiplier) - fees,
        holding=holding,
        quantity=Decimal(quantity),
        price=price,
        fees=fees,
        position_effect=effect,
        description=f"{verb} {abs(quantity)} {holding.symbol} @ {price}",
    )
