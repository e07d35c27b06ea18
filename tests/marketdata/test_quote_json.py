"""Prices on the tick as a client sees them: quotes of the simulated market through the real
server, printed as JSON the way grpcurl and grpc-web clients print them, carry no float noise
(`189.37`, never `189.37000000000001`; a change of `0.04`, never `0.03999999999999204`)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.json_format import MessageToJson

from optix.marketdata.v1 import marketdata_service_pb2 as pb
from optix.marketdata.v1 import quote_pb2
from optix_server.marketdata.config import MarketDataSettings
from tests.marketdata.harness import MarketDataHarness, marketdata_server

# JSON names of the Quote's prices (on the tick: whole cents), and its derived fields.
PRICES = ("bid", "ask", "last", "open", "high", "low", "previousClose", "change")


@pytest.fixture
async def md(tmp_path: Path) -> AsyncIterator[MarketDataHarness]:
    """The marketdata service on a real server, without a quote cache (every call is fresh)."""
    settings = MarketDataSettings(tick_rate=20, quote_cache_ttl=0)
    async with marketdata_server(tmp_path, settings) as harness:
        yield harness


def decimals(value: float) -> int:
    """How many decimals `value` prints with."""
    return len(repr(float(value)).partition(".")[2].rstrip("0"))


def check_quote_json(message: quote_pb2.Quote) -> dict[str, Any]:
    """The quote's JSON, checked: every price whole cents that print with at most two
    decimals, the mark with at most three (a half cent), change_percent with at most four."""
    text = MessageToJson(message)
    fields: dict[str, Any] = json.loads(text)
    for name in PRICES:
        value = float(fields.get(name, 0.0))
        assert abs(value * 100 - round(value * 100)) < 1e-9, (name, value)
        assert decimals(value) <= 2, (name, value, text)
    assert decimals(fields["mark"]) <= 3, text
    assert decimals(fields.get("changePercent", 0.0)) <= 4, text
    return fields


async def test_equity_quotes_print_on_the_tick(md: MarketDataHarness) -> None:
    symbols = ["AAPL", "MSFT", "NVDA", "SPY", "QQQ"]
    for _ in range(5):
        reply = await md.stub.BatchGetQuotes(
            pb.BatchGetQuotesRequest(symbols=symbols), metadata=md.metadata
        )
        assert [q.symbol for q in reply.quotes] == symbols
        for quote in reply.quotes:
            fields = check_quote_json(quote)
            assert fields["mark"] == pytest.approx((quote.bid + quote.ask) / 2, abs=1e-12)


async def test_option_quotes_print_on_their_classes_tick(md: MarketDataHarness) -> None:
    for underlying, nickels_from_3 in (("AAPL", True), ("SPY", False)):
        chain = await md.stub.GetOptionsChain(
            pb.GetOptionsChainRequest(underlying=underlying, strike_count=6),
            metadata=md.metadata,
        )
        symbols = [o.contract.symbol for o in chain.chain.options][:100]
        reply = await md.stub.BatchGetQuotes(
            pb.BatchGetQuotesRequest(symbols=symbols), metadata=md.metadata
        )
        assert len(reply.quotes) == len(symbols)
        for quote in reply.quotes:
            fields = check_quote_json(quote)
            if nickels_from_3:
                for name in ("bid", "ask", "last"):
                    value = float(fields.get(name, 0.0))
                    if value >= 3:
                        assert round(value * 100) % 5 == 0, (quote.symbol, name, value)
        for option in chain.chain.options:
            for value in (option.bid, option.ask, option.last):
                assert abs(value * 100 - round(value * 100)) < 1e-9 and decimals(value) <= 2
