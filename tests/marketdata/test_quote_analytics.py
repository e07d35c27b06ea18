"""Option quotes carry implied volatility and Greeks on GetQuote, BatchGetQuotes and StreamQuotes,
checked against an independent Black-Scholes-Merton written here with scipy."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from scipy.stats import norm

from optix.common.v1 import instrument_pb2
from optix.marketdata.v1 import marketdata_service_pb2 as pb
from optix.marketdata.v1 import quote_pb2
from optix_server.common.occ import OccSymbol, OptionRight
from optix_server.marketdata.config import MarketDataSettings
from optix_server.marketdata.convert import decode_quote, encode_quote
from optix_server.marketdata.models import DataSource, InstrumentType, Quote
from optix_server.marketdata.quote_analytics import QuoteAnalyst, option_roots
from tests.marketdata.harness import MarketDataHarness, marketdata_server

OK = quote_pb2.OPTION_ANALYTICS_STATUS_OK


def reference(
    quote: quote_pb2.Quote, strike: float, call: bool
) -> tuple[float, float]:  # (model price at the quoted IV, delta)
    """Price and delta from the quote's own analytics inputs, textbook formulas."""
    a = quote.option_analytics
    s, r, q, t, sigma = (
        a.underlying_price,
        a.risk_free_rate,
        a.dividend_yield,
        a.time_to_expiration_years,
        a.implied_volatility,
    )
    d1 = (math.log(s / strike) + (r - q + sigma * sigma / 2) * t) / (sigma * math.sqrt(t))
    d2 = d1 - sigma * math.sqrt(t)
    if call:
        price = s * math.exp(-q * t) * norm.cdf(d1) - strike * math.exp(-r * t) * norm.cdf(d2)
        return float(price), float(math.exp(-q * t) * norm.cdf(d1))
    price = strike * math.exp(-r * t) * norm.cdf(-d2) - s * math.exp(-q * t) * norm.cdf(-d1)
    return float(price), float(-math.exp(-q * t) * norm.cdf(-d1))


def assert_reproducible(quote: quote_pb2.Quote, contract: instrument_pb2.OptionContract) -> None:
    """The quote's IV reproduces its mark and its delta is the model's at that IV."""
    a = quote.option_analytics
    assert a.status == OK, quote
    call = contract.right == instrument_pb2.OPTION_RIGHT_CALL
    price, delta = reference(quote, contract.strike, call)
    assert price == pytest.approx(quote.mark, rel=1e-8)
    assert a.delta == pytest.approx(delta, rel=1e-9, abs=1e-12)
    assert (0 <= a.delta <= 1) if call else (-1 <= a.delta <= 0)
    assert a.gamma > 0 and a.vega > 0 and a.implied_volatility > 0


@pytest.fixture
async def md(tmp_path: Path) -> AsyncIterator[MarketDataHarness]:
    # No cache: every unary call prices afresh, so the numbers come from the same request.
    async with marketdata_server(
        tmp_path, MarketDataSettings(tick_rate=20, quote_cache_ttl=0)
    ) as h:
        yield h


async def contracts_near_the_money(
    md: MarketDataHarness, underlying: str
) -> list[instrument_pb2.OptionContract]:
    """The call and the put nearest the money of an expiration a few weeks out."""
    expirations = await md.stub.ListExpirations(
        pb.ListExpirationsRequest(underlying=underlying), metadata=md.metadata
    )
    target = next(e for e in expirations.expirations if e.days_to_expiration >= 20).date
    chain = await md.stub.GetOptionsChain(
        pb.GetOptionsChainRequest(
            underlying=underlying, strike_count=1, expiration_start=target, expiration_end=target
        ),
        metadata=md.metadata,
    )
    return [o.contract for o in chain.chain.options]


async def test_batch_get_quotes_prices_options_against_the_same_underlying_tick(
    md: MarketDataHarness,
) -> None:
    contracts = await contracts_near_the_money(md, "MSFT")
    assert {c.right for c in contracts} == {
        instrument_pb2.OPTION_RIGHT_CALL,
        instrument_pb2.OPTION_RIGHT_PUT,
    }
    reply = await md.stub.BatchGetQuotes(
        pb.BatchGetQuotesRequest(symbols=[*(c.symbol for c in contracts), "MSFT"]),
        metadata=md.metadata,
    )
    by_symbol = {q.symbol: q for q in reply.quotes}
    underlying = by_symbol["MSFT"]
    assert not underlying.HasField("option_analytics")
    for contract in contracts:
        quote = by_symbol[contract.symbol]
        assert quote.option_analytics.underlying_price == underlying.mark
        assert quote.option_analytics.risk_free_rate == pytest.approx(0.045)
        assert_reproducible(quote, contract)


async def test_get_quote_of_an_option_carries_its_analytics(md: MarketDataHarness) -> None:
    for contract in await contracts_near_the_money(md, "AAPL"):
        got = await md.stub.GetQuote(
            pb.GetQuoteRequest(symbol=contract.symbol), metadata=md.metadata
        )
        assert_reproducible(got.quote, contract)
    # Only the requested symbol comes back; its underlying was fetched for pricing only.
    batch = await md.stub.BatchGetQuotes(
        pb.BatchGetQuotesRequest(symbols=[contract.symbol]), metadata=md.metadata
    )
    assert [q.symbol for q in batch.quotes] == [contract.symbol]
    equity = await md.stub.GetQuote(pb.GetQuoteRequest(symbol="AAPL"), metadata=md.metadata)
    assert not equity.quote.HasField("option_analytics")


async def test_streamed_option_ticks_are_priced_at_each_tick(md: MarketDataHarness) -> None:
    contract = (await contracts_near_the_money(md, "SPY"))[0]
    call = md.stub.StreamQuotes(
        pb.StreamQuotesRequest(symbols=[contract.symbol, "SPY"]), metadata=md.metadata
    )
    priced_ticks = 0
    underlying_prices: set[float] = set()
    async for message in call:
        if message.WhichOneof("payload") != "quotes":
            continue
        batch = {q.symbol: q for q in message.quotes.quotes}
        option = batch.get(contract.symbol)
        if option is None:
            continue
        assert_reproducible(option, contract)
        spy = batch.get("SPY")
        assert spy is None or not spy.HasField("option_analytics")
        if spy is not None and spy.sequence == option.sequence:
            assert option.option_analytics.underlying_price == spy.mark
        underlying_prices.add(option.option_analytics.underlying_price)
        priced_ticks += 1
        if priced_ticks >= 10 and len(underlying_prices) > 1:
            break
    call.cancel()


async def test_streaming_only_an_option_still_prices_it(md: MarketDataHarness) -> None:
    # Nobody streams the underlying: the feed ticks it anyway, for the option's pricing.
    contract = (await contracts_near_the_money(md, "TSLA"))[-1]
    call = md.stub.StreamQuotes(
        pb.StreamQuotesRequest(symbols=[contract.symbol]), metadata=md.metadata
    )
    priced = 0
    async for message in call:
        if message.WhichOneof("payload") != "quotes":
            continue
        assert {q.symbol for q in message.quotes.quotes} == {contract.symbol}
        for quote in message.quotes.quotes:
            assert_reproducible(quote, contract)
            priced += 1
        if priced >= 5:
            break
    call.cancel()


NOW = datetime(2026, 6, 1, 15, 0, tzinfo=UTC)


def _quote(
    symbol: str, kind: InstrumentType, bid: float, ask: float, when: datetime = NOW
) -> Quote:
    return Quote(
        symbol=symbol,
        instrument_type=kind,
        bid=bid,
        ask=ask,
        last=(bid + ask) / 2,
        bid_size=1,
        ask_size=1,
        volume=0,
        open=0,
        high=0,
        low=0,
        previous_close=0,
        quote_time=when,
        source=DataSource.SIMULATED,
        sequence=1,
    )


def _occ(right: OptionRight, strike: float, expiration: date = date(2026, 7, 17)) -> str:
    return OccSymbol.build("ABC", expiration, right, strike).format()


def test_the_analyst_prices_options_only_and_says_why_not() -> None:
    analyst = QuoteAnalyst(MarketDataSettings())
    call, no_bid, expired, orphan = (
        _occ(OptionRight.CALL, 100),
        _occ(OptionRight.PUT, 50),
        _occ(OptionRight.CALL, 100, date(2026, 5, 15)),
        OccSymbol.build("XYZ", date(2026, 7, 17), OptionRight.CALL, 10).format(),
    )
    quotes = {
        "ABC": _quote("ABC", InstrumentType.EQUITY, 99.9, 100.1),
        call: _quote(call, InstrumentType.OPTION, 3.0, 3.2),
        no_bid: _quote(no_bid, InstrumentType.OPTION, 0.0, 0.05),
        expired: _quote(expired, InstrumentType.OPTION, 0.0, 0.01),
        orphan: _quote(orphan, InstrumentType.OPTION, 1.0, 1.1),
    }
    priced = analyst.price(quotes, {})
    assert priced["ABC"] == quotes["ABC"]  # equities pass through untouched
    assert priced[orphan].analytics is None  # no underlying price: not priced
    ok = priced[call].analytics
    assert ok is not None and ok.iv_status == OK and ok.greeks is not None
    assert ok.underlying_price == pytest.approx(100.0)
    assert ok.time_to_expiration_years == pytest.approx(
        (datetime(2026, 7, 17, 20, 0, tzinfo=UTC) - NOW) / timedelta(days=365)
    )
    for symbol, status in (
        (no_bid, quote_pb2.OPTION_ANALYTICS_STATUS_NO_BID),
        (expired, quote_pb2.OPTION_ANALYTICS_STATUS_EXPIRED),
    ):
        analytics = priced[symbol].analytics
        assert analytics is not None and analytics.iv_status == status
        assert analytics.greeks is None and analytics.implied_volatility == 0
    # A mark from elsewhere (the feed's newest underlying tick) prices the orphan.
    assert analyst.price({orphan: quotes[orphan]}, {"XYZ": 10.0})[orphan].analytics is not None
    # The wire form (cache, pub/sub) keeps everything.
    for quote in priced.values():
        assert decode_quote(encode_quote(quote)) == quote


def test_option_roots_ignores_tickers_and_malformed_symbols() -> None:
    assert option_roots(["AAPL", _occ(OptionRight.CALL, 100), "NOT AN OCC SYMBOL  "]) == {"ABC"}
