"""The paper broker: one-call connection, a deterministic demo book per user, contracts the
simulated market data lists."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from optix_server.brokerage.connectors.base import (
    AuthKind,
    AuthorizationGrant,
    TokenSet,
    TransactionQuery,
)
from optix_server.brokerage.connectors.errors import ProviderRejected
from optix_server.brokerage.connectors.models import (
    InstrumentKind,
    PositionEffect,
    TransactionType,
)
from optix_server.brokerage.connectors.paper import PaperConnector
from optix_server.brokerage.connectors.paper_book import DEFAULT_UNIVERSE, build_demo_book
from optix_server.common.occ import OccSymbol
from optix_server.marketdata.providers.simulated_options import build_listing
from tests.brokerage.support import VirtualTime

OPENED = datetime(2026, 1, 14, 17, 3, tzinfo=UTC)
EVER = datetime(2000, 1, 1, tzinfo=UTC)


async def connect(paper: PaperConnector, subject: str) -> TokenSet:
    request = paper.authorization_request("any-state")
    assert request.url == "" and request.code_verifier == ""
    return await paper.exchange_code(AuthorizationGrant(code="", redirect_uri="", subject=subject))


async def test_connects_in_one_call_and_never_expires() -> None:
    vt = VirtualTime(OPENED)
    paper = PaperConnector(vt)
    assert paper.provider.auth_kind is AuthKind.NONE
    assert (paper.provider.pkce, paper.provider.enabled) == (False, True)
    assert paper.provider.authorization_lifetime is None
    tokens = await connect(paper, "user-1")
    assert tokens.access_expires_at is None and tokens.refresh_expires_at is None
    vt.advance(timedelta(days=400))
    assert await paper.refresh(tokens) == tokens
    assert await paper.revoke(tokens) is True
    with pytest.raises(ProviderRejected):
        await paper.exchange_code(AuthorizationGrant(code="", redirect_uri=""))
    with pytest.raises(ProviderRejected):
        await paper.list_accounts("not-a-paper-token")


async def test_the_demo_account_is_deterministic_per_user() -> None:
    vt = VirtualTime(OPENED)
    first, second = PaperConnector(vt), PaperConnector(vt)
    tokens = await connect(first, "user-1")
    vt.advance(timedelta(days=20))
    (account,) = await first.list_accounts(tokens.access_token)
    assert await second.list_accounts(tokens.access_token) == [account]
    other = await connect(first, "user-2")
    (theirs,) = await first.list_accounts(other.access_token)
    assert theirs.provider_account_id != account.provider_account_id
    assert [p.symbol for p in theirs.positions] != [p.symbol for p in account.positions]
    query = TransactionQuery(EVER, vt.now() + timedelta(seconds=1))
    history = await first.list_transactions(tokens.access_token, account.provider_account_id, query)
    assert history == await second.list_transactions(
        tokens.access_token, account.provider_account_id, query
    )


async def test_cash_equity_and_option_positions_with_cost_basis() -> None:
    vt = VirtualTime(OPENED)
    paper = PaperConnector(vt)
    tokens = await connect(paper, "user-1")
    (account,) = await paper.list_accounts(tokens.access_token)
    equities = [p for p in account.positions if p.holding.kind is InstrumentKind.EQUITY]
    options = [p for p in account.positions if p.holding.kind is InstrumentKind.OPTION]
    assert len(equities) == 3 and len(options) == 3
    assert any(p.quantity < 0 for p in options)  # the short put
    for position in account.positions:
        assert position.average_cost is not None and position.average_cost > 0
        assert position.cost_basis == (
            position.average_cost * abs(position.quantity) * position.holding.multiplier
        )
        assert position.market_value is None  # priced by the portfolio, not the broker
    assert all(p.holding.multiplier == 100 for p in options)
    history = await paper.list_transactions(
        tokens.access_token,
        account.provider_account_id,
        TransactionQuery(EVER, vt.now() + timedelta(seconds=1)),
    )
    # Cash is exactly what the history says: deposit, buys, premiums and fees.
    assert account.balances.cash == sum((t.amount for t in history), Decimal(0))
    assert account.balances.cash < Decimal(100_000)
    assert account.balances.liquidation_value is None
    assert [t.type for t in history].count(TransactionType.ACH_IN) == 1
    with pytest.raises(ProviderRejected):
        await paper.list_positions(tokens.access_token, "paper-someone-else")


def test_options_are_contracts_the_simulated_market_lists() -> None:
    prices = {t.ticker: float(t.reference_price) for t in DEFAULT_UNIVERSE}
    listed: dict[tuple[str, date], set[OccSymbol]] = {}

    def lists(contract: OccSymbol, day: date) -> bool:
        key = (contract.root, day)
        if key not in listed:
            listed[key] = set(
                build_listing(contract.root, prices[contract.root], day, 42).contracts
            )
        return contract in listed[key]

    for months in range(12):
        now = OPENED + timedelta(days=31 * months)
        book = build_demo_book("user-1", OPENED, now)
        for position in book.positions:
            option = position.holding.option
            if option is None:
                continue
            assert option.expiration > now.date()
            # Listed by a market data server started at the opening, or on the day itself.
            for listing_day in (OPENED.date(), now.date()) if months < 10 else (now.date(),):
                assert lists(option, listing_day), (position.symbol, listing_day)


def test_legs_roll_monthly() -> None:
    before = build_demo_book("user-1", OPENED, datetime(2026, 1, 30, tzinfo=UTC))
    after = build_demo_book("user-1", OPENED, datetime(2026, 2, 10, tzinfo=UTC))
    expirations = {
        p.holding.option.expiration for p in before.positions if p.holding.option is not None
    }
    assert expirations == {date(2026, 3, 20)}
    rolled = {p.holding.option.expiration for p in after.positions if p.holding.option is not None}
    assert rolled == {date(2026, 4, 17)}
    closes = [t for t in after.transactions if t.position_effect is PositionEffect.CLOSING]
    assert len(closes) == 3
    assert after.transactions[: len(before.transactions)] == before.transactions
    assert after.cash == sum((t.amount for t in after.transactions), Decimal(0))


async def test_transactions_filter_by_range_and_type() -> None:
    vt = VirtualTime(OPENED)
    paper = PaperConnector(vt)
    tokens = await connect(paper, "user-1")
    vt.advance(timedelta(days=45))
    (account,) = await paper.list_accounts(tokens.access_token)
    trades = await paper.list_transactions(
        tokens.access_token,
        account.provider_account_id,
        TransactionQuery(OPENED + timedelta(days=1), vt.now(), {TransactionType.TRADE}),
    )
    assert trades and all(t.type is TransactionType.TRADE for t in trades)
    assert all(t.time >= OPENED + timedelta(days=1) for t in trades)
