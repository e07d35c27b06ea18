"""GetPortfolio, ListPositions and ListTransactions over synced data: the paper broker gives a
full portfolio priced from market data, with Greeks checked against the options chain; market
data down falls back to the last synced prices; lists page and filter."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from optix.brokerage.v1 import brokerage_service_pb2 as pb
from optix.brokerage.v1 import portfolio_pb2, transaction_pb2
from optix.common.v1 import instrument_pb2
from optix.marketdata.v1 import marketdata_service_pb2, option_chain_pb2, quote_pb2
from optix_server.brokerage.money import from_decimal_proto, from_money
from optix_server.brokerage.service import BrokerageService
from optix_server.infra import errors
from tests.brokerage.harness import Stack, User
from tests.support.sdk_errors import expect

pytestmark = pytest.mark.asyncio(loop_scope="package")


def _close(a: float, b: float) -> bool:
    # The quote's Greeks and the chain's are priced moments apart (time to expiry moves theta
    # and vega by ~1e-6); a wrong quantity, sign or multiplier is off by far more.
    return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6)


async def _paper_user(stack: Stack) -> User:
    user = await stack.user()
    await user.connect_paper()
    await stack.worker.run_due()
    return user


async def _portfolio(user: User) -> portfolio_pb2.Portfolio:
    reply = await user.brokerage.GetPortfolio(pb.GetPortfolioRequest(name="users/me/portfolio"))
    return reply.portfolio


async def test_paper_gives_a_full_portfolio_with_exact_totals(stack: Stack) -> None:
    user = await _paper_user(stack)
    portfolio = await _portfolio(user)
    assert portfolio.name == f"users/{user.user_id}/portfolio"
    assert portfolio.currency_code == "USD" and not portfolio.quotes_unavailable
    kinds = {p.instrument.type for p in portfolio.positions}
    assert kinds == {instrument_pb2.INSTRUMENT_TYPE_EQUITY, instrument_pb2.INSTRUMENT_TYPE_OPTION}
    assert [p.symbol for p in portfolio.positions] == sorted(p.symbol for p in portfolio.positions)
    total = Decimal(0)
    for position in portfolio.positions:
        assert position.price_source == portfolio_pb2.PRICE_SOURCE_QUOTE
        quantity = from_decimal_proto(position.quantity)
        multiplier = 100 if position.instrument.type == instrument_pb2.INSTRUMENT_TYPE_OPTION else 1
        value = from_money(position.market_value)
        # Exact decimals: value = price x quantity x multiplier, to the nano.
        assert value == from_money(position.price) * quantity * multiplier
        cost = from_money(position.cost_basis)
        pnl = from_money(position.unrealized_profit_loss)
        assert pnl == (value - cost if quantity > 0 else cost + value)
        total += value
    assert from_money(portfolio.totals.market_value) == total
    (summary,) = portfolio.accounts
    cash = from_money(portfolio.balances.cash)
    assert cash == from_money(summary.balances.cash) and cash > 0
    assert from_money(portfolio.balances.total_value) == cash + total
    assert summary.position_count == len(portfolio.positions)
    assert summary.provider == "providers/paper"


async def _chain_greeks(
    user: User, symbols: Sequence[str]
) -> Mapping[str, option_chain_pb2.Greeks]:
    found: dict[str, option_chain_pb2.Greeks] = {}
    for underlying in sorted({s.split()[0] for s in symbols}):
        reply = await user.client.marketdata.GetOptionsChain(
            marketdata_service_pb2.GetOptionsChainRequest(underlying=underlying)
        )
        for option in reply.chain.options:
            if option.contract.symbol in symbols:
                found[option.contract.symbol] = option.greeks
    return found


async def test_portfolio_greeks_match_the_chain(stack: Stack) -> None:
    user = await _paper_user(stack)
    portfolio = await _portfolio(user)
    options = [
        p for p in portfolio.positions if p.instrument.type == instrument_pb2.INSTRUMENT_TYPE_OPTION
    ]
    assert options
    chain = await _chain_greeks(user, [p.symbol for p in options])
    delta = gamma = theta = vega = 0.0
    for position in portfolio.positions:
        size = float(from_decimal_proto(position.quantity))
        greeks = position.greeks
        if position.instrument.type == instrument_pb2.INSTRUMENT_TYPE_EQUITY:
            assert greeks.delta == size and greeks.gamma == 0 and greeks.theta == 0
            assert _close(greeks.delta_dollars, size * from_money(position.price).__float__())
        else:
            contract = chain[position.symbol]
            assert _close(greeks.delta, contract.delta * size * 100), position.symbol
            assert _close(greeks.gamma, contract.gamma * size * 100)
            assert _close(greeks.theta, contract.theta * size * 100)
            assert _close(greeks.vega, contract.vega * size * 100)
        delta += greeks.delta
        gamma += greeks.gamma
        theta += greeks.theta
        vega += greeks.vega
    totals = portfolio.greeks
    assert totals.missing_count == 0
    assert _close(totals.delta, delta) and _close(totals.gamma, gamma)
    assert _close(totals.theta, theta) and _close(totals.vega, vega)
    assert _close(portfolio.accounts[0].greeks.delta, delta)


class _Down:
    """Market data that cannot be reached."""

    async def unknown_symbols(self, symbols: Sequence[str], budget_s: float) -> list[str]:
        raise errors.Unavailable("down")

    async def quotes(
        self, symbols: Sequence[str], budget_s: float
    ) -> Mapping[str, quote_pb2.Quote]:
        raise errors.Unavailable("down")


async def test_market_data_down_uses_the_last_synced_prices(stack: Stack) -> None:
    user = await _paper_user(stack)
    live = await _portfolio(user)
    service: BrokerageService = stack.service.twin(market=_Down())
    view = await service.portfolio(user.user_id, "users/me/portfolio", 1.0)
    assert view.quotes_unavailable
    prices = {v.symbol: v.price for v in view.positions}
    for position in live.positions:
        # Frozen simulated prices: the sync recorded the same prices the live quotes show.
        assert prices[position.symbol] == from_money(position.price)
    assert {v.source.name for v in view.positions} == {"LAST_SYNC"}
    assert view.greeks.missing_count == sum(1 for v in view.positions if " " in v.symbol)


async def test_list_positions_pages_per_account(stack: Stack) -> None:
    user = await _paper_user(stack)
    portfolio = await _portfolio(user)
    account = portfolio.accounts[0].account
    seen: list[portfolio_pb2.Position] = []
    token = ""
    while True:
        reply = await user.brokerage.ListPositions(
            pb.ListPositionsRequest(parent=f"{account}", page_size=2, page_token=token)
        )
        seen.extend(reply.positions)
        token = reply.next_page_token
        if not token:
            break
    assert [p.symbol for p in seen] == [p.symbol for p in portfolio.positions]
    assert {p.account for p in seen} == {account}
    everything = await user.brokerage.ListPositions(
        pb.ListPositionsRequest(parent="users/me/connections/-/accounts/-")
    )
    assert len(everything.positions) == len(seen)
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        user.brokerage.ListPositions(
            pb.ListPositionsRequest(
                parent="users/me/connections/-/accounts/-", page_token=token or "x"
            )
        ),
    )


async def test_list_transactions_pages_and_filters(stack: Stack) -> None:
    user = await _paper_user(stack)
    parent = "users/me/connections/-/accounts/-"
    everything: list[transaction_pb2.Transaction] = []
    token = ""
    while True:
        reply = await user.brokerage.ListTransactions(
            pb.ListTransactionsRequest(parent=parent, page_size=3, page_token=token)
        )
        everything.extend(reply.transactions)
        token = reply.next_page_token
        if not token:
            break
    assert len(everything) > 3
    times = [(t.transaction_time.ToDatetime(), t.name) for t in everything]
    assert times == sorted(times, reverse=True)
    assert len({t.name for t in everything}) == len(everything)
    trades = await user.brokerage.ListTransactions(
        pb.ListTransactionsRequest(
            parent=parent, page_size=1000, types=[transaction_pb2.TRANSACTION_TYPE_TRADE]
        )
    )
    assert trades.transactions
    assert {t.type for t in trades.transactions} == {transaction_pb2.TRANSACTION_TYPE_TRADE}
    option_trade = next(t for t in trades.transactions if " " in t.symbol)
    underlying = option_trade.symbol.split()[0]
    by_symbol = await user.brokerage.ListTransactions(
        pb.ListTransactionsRequest(parent=parent, page_size=1000, symbol=underlying.lower())
    )
    assert all(t.symbol.split()[0] == underlying for t in by_symbol.transactions)
    # A ticker matches the options on it too.
    assert option_trade.name in {t.name for t in by_symbol.transactions}
    middle = everything[len(everything) // 2].transaction_time
    before = await user.brokerage.ListTransactions(
        pb.ListTransactionsRequest(parent=parent, page_size=1000, end_time=middle)
    )
    assert all(t.transaction_time.ToDatetime() < middle.ToDatetime() for t in before.transactions)
    late = Timestamp(seconds=middle.seconds - 1)
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        user.brokerage.ListTransactions(
            pb.ListTransactionsRequest(parent=parent, start_time=middle, end_time=late)
        ),
    )
