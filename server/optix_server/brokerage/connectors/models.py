"""What a provider reports about a login: accounts with balances, positions and transactions.

Plain frozen dataclasses, money as exact Decimal. These are the provider's figures as synced;
pricing with current quotes happens later, in the portfolio.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from optix_server.common.occ import OccSymbol

EQUITY_MULTIPLIER = 1
STANDARD_OPTION_MULTIPLIER = 100


class AccountType(enum.Enum):
    """Cash or margin (values match optix.brokerage.v1.AccountType)."""

    UNSPECIFIED = 0
    CASH = 1
    MARGIN = 2


class InstrumentKind(enum.Enum):
    """What a position or transaction holds (values match optix.common.v1.InstrumentType)."""

    EQUITY = 1
    OPTION = 2


class TransactionType(enum.Enum):
    """The kind of an account transaction (values match optix.brokerage.v1.TransactionType)."""

    TRADE = 1
    DIVIDEND_OR_INTEREST = 2
    ACH_IN = 3
    ACH_OUT = 4
    JOURNAL = 5
    FEE = 6
    OTHER = 7


class PositionEffect(enum.Enum):
    """Whether a trade opened or closed a position (values match the proto enum)."""

    UNSPECIFIED = 0
    OPENING = 1
    CLOSING = 2


@dataclass(frozen=True, slots=True)
class Holding:
    """The instrument behind a symbol: an equity ticker, or an option with its contract parts."""

    symbol: str
    kind: InstrumentKind
    option: OccSymbol | None = None
    multiplier: int = EQUITY_MULTIPLIER

    @property
    def underlying(self) -> str:
        """The ticker itself, or the option's root."""
        return self.option.root if self.option is not None else self.symbol


@dataclass(frozen=True, slots=True)
class BrokerBalances:
    """An account's cash figures as the provider reports them."""

    # Cash and money-market sweep; negative when borrowing on margin.
    cash: Decimal
    # What can be spent on new equity purchases now; None when the provider does not say.
    buying_power: Decimal | None
    # Cash plus positions at the provider's marks; None when the provider does not price
    # (the paper broker): the portfolio computes it from quotes.
    liquidation_value: Decimal | None


@dataclass(frozen=True, slots=True)
class BrokerPosition:
    """One account's holding of one instrument."""

    holding: Holding
    # Shares or contracts; negative when short; fractional shares allowed.
    quantity: Decimal
    # Per share (per share of premium for options), as the provider reports it; None if unknown.
    average_cost: Decimal | None
    # The provider's valuation (price x quantity x multiplier); None when it does not price.
    market_value: Decimal | None = None
    description: str = ""

    @property
    def symbol(self) -> str:
        """The canonical ticker or OCC symbol."""
        return self.holding.symbol

    @property
    def cost_basis(self) -> Decimal | None:
        """average_cost x |quantity| x multiplier, exact; None without an average cost."""
        if self.average_cost is None:
            return None
        return self.average_cost * abs(self.quantity) * self.holding.multiplier


@dataclass(frozen=True, slots=True)
class BrokerAccount:
    """One brokerage account under a login, with balances and (when fetched) positions."""

    # The provider's stable handle for later calls (Schwab: the account hash, not the number).
    provider_account_id: str
    # Only the last four characters of the account number ever leave the connector.
    account_number_last4: str
    display_name: str
    type: AccountType
    currency_code: str
    balances: BrokerBalances
    positions: tuple[BrokerPosition, ...] = ()


@dataclass(frozen=True, slots=True)
class BrokerTransaction:
    """One entry of an account's history as the provider reports it."""

    # Unique within the account; upserts key on it.
    provider_transaction_id: str
    type: TransactionType
    time: datetime
    # Net cash effect, fees included: positive for credits.
    amount: Decimal
    holding: Holding | None = None
    # Positive when bought or received, negative when sold or delivered.
    quantity: Decimal | None = None
    # Per share (per share of premium for options).
    price: Decimal | None = None
    # Commissions and fees included in `amount`, as a positive number.
    fees: Decimal = Decimal(0)
    position_effect: PositionEffect = PositionEffect.UNSPECIFIED
    description: str = ""
