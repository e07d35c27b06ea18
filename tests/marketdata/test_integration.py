"""Every MarketDataService RPC through a real server on port 0 with the simulated provider."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import numpy as np
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2

from optix.common.v1 import instrument_pb2
from optix.marketdata.v1 import marketdata_service_pb2 as pb
from optix.marketdata.v1 import option_chain_pb2, price_history_pb2, quote_pb2
from optix_server.infra.auth.config import AuthSettings
from optix_server.marketdata.config import MarketDataSettings
from optix_server.marketdata.pricing import bsm_greeks, bsm_price
from tests.marketdata.harness import MarketDataHarness, marketdata_server
from tests.support.errors import rpc_status, violated_fields
from tests.support.schwab_standin import schwab_standin

OK = option_chain_pb2.IMPLIED_VOLATILITY_STATUS_OK


@pytest.fixture
async def md(tmp_path: Path) -> AsyncIterator[MarketDataHarness]:
    settings = MarketDataSettings(tick_rate=20, quote_cache_ttl=3600)
    async with marketdata_server(tmp_path, settings) as harness:
        yield harness


async def expect(code: grpc.StatusCode, call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    assert info.value.code() == code, info.value.details()
    return info.value


async def test_get_quote_normalises_and_caches(md: MarketDataHarness) -> None:
    first = await md.stub.GetQuote(pb.GetQuoteRequest(symbol=" aapl "), metadata=md.metadata)
    q = first.quote
    assert q.symbol == "AAPL" and q.source == quote_pb2.DATA_SOURCE_SIMULATED
    assert q.instrument_type == instrument_pb2.INSTRUMENT_TYPE_EQUITY
    assert q.bid < q.ask and q.mark == pytest.approx((q.bid + q.ask) / 2)
    assert q.change == pytest.approx(q.last - q.previous_close)
    second = await md.stub.GetQuote(pb.GetQuoteRequest(symbol="AAPL"), metadata=md.metadata)
    assert second.quote.sequence == q.sequence  # served from the cache


async def test_get_quote_of_an_option(md: MarketDataHarness) -> None:
    chain = await md.stub.GetOptionsChain(
        pb.GetOptionsChainRequest(underlying="MSFT", strike_count=1), metadata=md.metadata
    )
    occ = chain.chain.options[0].contract.symbol
    got = await md.stub.GetQuote(pb.GetQuoteRequest(symbol=occ.lower()), metadata=md.metadata)
    assert got.quote.symbol == occ
    assert got.quote.instrument_type == instrument_pb2.INSTRUMENT_TYPE_OPTION


async def test_unknown_symbol_is_not_found(md: MarketDataHarness) -> None:
    error = await expect(
        grpc.StatusCode.NOT_FOUND,
        md.stub.GetQuote(pb.GetQuoteRequest(symbol="ZZZZ"), metadata=md.metadata),
    )
    infos = [
        d for d in rpc_status(error).details if d.Is(error_details_pb2.ResourceInfo.DESCRIPTOR)
    ]
    assert infos


@pytest.mark.parametrize(
    "symbol", ["", "   ", "AAPL!", "A" * 40, "AAPL  241321C00190000", "AAPL  240621C00000000"]
)
async def test_bad_symbols_are_invalid_argument(md: MarketDataHarness, symbol: str) -> None:
    error = await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        md.stub.GetQuote(pb.GetQuoteRequest(symbol=symbol), metadata=md.metadata),
    )
    assert violated_fields(error) == {"symbol"}


async def test_batch_lists_missing_and_collapses_duplicates(md: MarketDataHarness) -> None:
    got = await md.stub.BatchGetQuotes(
        pb.BatchGetQuotesRequest(symbols=["msft", "ZZZZ", "AAPL", "MSFT"]), metadata=md.metadata
    )
    assert [q.symbol for q in got.quotes] == ["MSFT", "AAPL"]
    assert list(got.missing_symbols) == ["ZZZZ"]
    error = await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        md.stub.BatchGetQuotes(
            pb.BatchGetQuotesRequest(symbols=["AAPL", "BAD SYMBOL!"]), metadata=md.metadata
        ),
    )
    assert violated_fields(error) == {"symbols[1]"}
    for symbols in ([], [f"S{i}" for i in range(501)]):
        error = await expect(
            grpc.StatusCode.INVALID_ARGUMENT,
            md.stub.BatchGetQuotes(pb.BatchGetQuotesRequest(symbols=symbols), metadata=md.metadata),
        )
        assert violated_fields(error) == {"symbols"}


async def test_list_expirations(md: MarketDataHarness) -> None:
    got = await md.stub.ListExpirations(
        pb.ListExpirationsRequest(underlying="spy"), metadata=md.metadata
    )
    days = [e.days_to_expiration for e in got.expirations]
    assert days == sorted(days) and days[0] >= 0 and len(days) > 10
    kinds = {e.type for e in got.expirations}
    assert option_chain_pb2.EXPIRATION_TYPE_STANDARD in kinds
    assert option_chain_pb2.EXPIRATION_TYPE_WEEKLY in kinds
    await expect(
        grpc.StatusCode.NOT_FOUND,
        md.stub.ListExpirations(pb.ListExpirationsRequest(underlying="ZZZZ"), metadata=md.metadata),
    )
    error = await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        md.stub.ListExpirations(
            pb.ListExpirationsRequest(underlying="AAPL  240621C00190000"), metadata=md.metadata
        ),
    )
    assert violated_fields(error) == {"underlying"}


async def test_chain_numbers_are_reproducible_from_its_parameters(md: MarketDataHarness) -> None:
    got = await md.stub.GetOptionsChain(
        pb.GetOptionsChainRequest(underlying="AAPL"), metadata=md.metadata
    )
    chain = got.chain
    p = chain.pricing
    assert p.model == "black-scholes-merton" and p.price_basis == "mark"
    assert p.underlying_price == pytest.approx(chain.underlying_quote.mark)
    assert p.dividend_yield == pytest.approx(0.005) and p.risk_free_rate == pytest.approx(0.045)
    assert chain.source == quote_pb2.DATA_SOURCE_SIMULATED
    assert len(chain.options) > 2000
    keys = [
        (
            (o.contract.expiration.year, o.contract.expiration.month, o.contract.expiration.day),
            o.contract.strike,
            o.contract.right,
        )
        for o in chain.options
    ]
    assert keys == sorted(keys)  # expiration, strike, calls (1) before puts (2)
    ok = [o for o in chain.options if o.implied_volatility_status == OK]
    assert len(ok) > 0.9 * len(chain.options)
    s, r, q = p.underlying_price, p.risk_free_rate, p.dividend_yield
    k = np.array([o.contract.strike for o in ok])
    t = np.array([o.time_to_expiration_years for o in ok])
    iv = np.array([o.implied_volatility for o in ok])
    call = np.array([o.contract.right == instrument_pb2.OPTION_RIGHT_CALL for o in ok])
    marks = np.array([o.mark for o in ok])
    # A client with only the chain's parameters reproduces every mark and Greek.
    rel = np.abs(bsm_price(s, k, t, r, q, iv, call) - marks) / marks
    assert rel.max() < 1e-10
    g = bsm_greeks(s, k, t, r, q, iv, call)
    np.testing.assert_allclose([o.greeks.delta for o in ok], g.delta, rtol=1e-12)
    np.testing.assert_allclose([o.greeks.theta for o in ok], g.theta, rtol=1e-12)
    np.testing.assert_allclose([o.greeks.rho for o in ok], g.rho, rtol=1e-12)
    # Contracts without an IV say why and carry no Greeks.
    for o in chain.options:
        if o.implied_volatility_status != OK:
            assert not o.HasField("greeks") and o.implied_volatility == 0
    # Put-call parity holds within the quoted spreads on every strike of the chain.
    by_key = {
        (o.contract.expiration.SerializeToString(), o.contract.strike, o.contract.right): o
        for o in chain.options
    }
    for o in chain.options:
        if o.contract.right != instrument_pb2.OPTION_RIGHT_CALL:
            continue
        put = by_key[
            (
                o.contract.expiration.SerializeToString(),
                o.contract.strike,
                instrument_pb2.OPTION_RIGHT_PUT,
            )
        ]
        tt = o.time_to_expiration_years
        parity = s * math.exp(-q * tt) - o.contract.strike * math.exp(-r * tt)
        assert o.bid - put.ask <= parity + 0.02 and parity <= o.ask - put.bid + 0.02


async def test_chain_filters(md: MarketDataHarness) -> None:
    everything = (
        await md.stub.GetOptionsChain(
            pb.GetOptionsChainRequest(underlying="AAPL"), metadata=md.metadata
        )
    ).chain
    spot = everything.pricing.underlying_price
    first = everything.options[0].contract.expiration
    got = (
        await md.stub.GetOptionsChain(
            pb.GetOptionsChainRequest(
                underlying="AAPL",
                expiration_start=first,
                expiration_end=first,
                strike_count=4,
                side=pb.CONTRACT_SIDE_PUTS,
            ),
            metadata=md.metadata,
        )
    ).chain
    strikes = sorted(o.contract.strike for o in got.options)
    assert len(strikes) == 4
    assert all(o.contract.right == instrument_pb2.OPTION_RIGHT_PUT for o in got.options)
    assert all(o.contract.expiration == first for o in got.options)
    all_strikes = sorted(
        {o.contract.strike for o in everything.options if o.contract.expiration == first}
    )
    nearest = sorted(sorted(all_strikes, key=lambda k: (abs(k - spot), k))[:4])
    assert strikes == nearest
    ranged = (
        await md.stub.GetOptionsChain(
            pb.GetOptionsChainRequest(underlying="AAPL", strike_min=180, strike_max=200),
            metadata=md.metadata,
        )
    ).chain
    assert ranged.options and all(180 <= o.contract.strike <= 200 for o in ranged.options)


async def test_chain_validation(md: MarketDataHarness) -> None:
    error = await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        md.stub.GetOptionsChain(
            pb.GetOptionsChainRequest(
                underlying="",
                strike_min=-5,
                strike_count=-1,
                expiration_start=instrument_pb2.Date(year=2026, month=13, day=1),
            ),
            metadata=md.metadata,
        ),
    )
    assert violated_fields(error) == {
        "underlying",
        "strike_min",
        "strike_count",
        "expiration_start",
    }
    error = await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        md.stub.GetOptionsChain(
            pb.GetOptionsChainRequest(
                underlying="AAPL",
                strike_min=200,
                strike_max=100,
                expiration_start=instrument_pb2.Date(year=2027, month=1, day=1),
                expiration_end=instrument_pb2.Date(year=2026, month=1, day=1),
            ),
            metadata=md.metadata,
        ),
    )
    assert violated_fields(error) == {"strike_max", "expiration_end"}


async def test_price_history(md: MarketDataHarness) -> None:
    now = datetime.now(UTC)
    start = Timestamp()
    start.FromDatetime(now - timedelta(days=2))
    got = await md.stub.GetPriceHistory(
        pb.GetPriceHistoryRequest(
            symbol="aapl", interval=price_history_pb2.BAR_INTERVAL_ONE_HOUR, start_time=start
        ),
        metadata=md.metadata,
    )
    assert got.symbol == "AAPL" and got.source == quote_pb2.DATA_SOURCE_SIMULATED
    assert 47 <= len(got.bars) <= 49
    times = [b.start_time.ToDatetime() for b in got.bars]
    assert times == sorted(times)
    error = await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        md.stub.GetPriceHistory(pb.GetPriceHistoryRequest(symbol="AAPL"), metadata=md.metadata),
    )
    assert violated_fields(error) == {"interval", "start_time"}
    future = Timestamp()
    future.FromDatetime(now + timedelta(days=1))
    error = await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        md.stub.GetPriceHistory(
            pb.GetPriceHistoryRequest(
                symbol="AAPL",
                interval=price_history_pb2.BAR_INTERVAL_ONE_MINUTE,
                start_time=future,
            ),
            metadata=md.metadata,
        ),
    )
    assert violated_fields(error) == {"end_time"}
    # Outside Timestamp's range (year 1..9999): a client mistake, not INTERNAL.
    error = await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        md.stub.GetPriceHistory(
            pb.GetPriceHistoryRequest(
                symbol="AAPL",
                interval=price_history_pb2.BAR_INTERVAL_ONE_MINUTE,
                start_time=Timestamp(seconds=10**15),
                end_time=Timestamp(seconds=-(10**15)),
            ),
            metadata=md.metadata,
        ),
    )
    assert violated_fields(error) == {"start_time", "end_time"}


async def test_stream_quotes_batches_and_sequences(md: MarketDataHarness) -> None:
    call = md.stub.StreamQuotes(
        pb.StreamQuotesRequest(symbols=["aapl", "MSFT", "AAPL"]), metadata=md.metadata
    )
    last: dict[str, int] = {}
    async for message in call:
        assert message.WhichOneof("payload") == "quotes"
        symbols = [q.symbol for q in message.quotes.quotes]
        assert len(symbols) == len(set(symbols))  # at most one quote per symbol per batch
        for q in message.quotes.quotes:
            assert q.sequence > last.get(q.symbol, 0)
            last[q.symbol] = q.sequence
        if len(last) == 2 and min(last.values()) > 20:
            break
    call.cancel()
    assert set(last) == {"AAPL", "MSFT"}


async def test_stream_heartbeats_when_idle(md: MarketDataHarness) -> None:
    call = md.stub.StreamQuotes(
        pb.StreamQuotesRequest(symbols=["ZZZZ"], heartbeat_interval=Duration(seconds=1)),
        metadata=md.metadata,
    )
    message = await asyncio.wait_for(call.read(), 10)
    assert isinstance(message, pb.StreamQuotesResponse)
    assert message.WhichOneof("payload") == "heartbeat"
    assert message.heartbeat.server_time.seconds > 0
    call.cancel()


async def test_stream_validation(md: MarketDataHarness) -> None:
    for request, field in (
        (pb.StreamQuotesRequest(symbols=[f"S{i}" for i in range(501)]), "symbols"),
        (pb.StreamQuotesRequest(symbols=[]), "symbols"),
        (pb.StreamQuotesRequest(symbols=["OK", "NOT OK!"]), "symbols[1]"),
        (
            pb.StreamQuotesRequest(symbols=["AAPL"], heartbeat_interval=Duration(nanos=5)),
            "heartbeat_interval",
        ),
        (
            # Beyond timedelta's range: a client mistake, not INTERNAL.
            pb.StreamQuotesRequest(symbols=["AAPL"], heartbeat_interval=Duration(seconds=10**15)),
            "heartbeat_interval",
        ),
    ):
        call = md.stub.StreamQuotes(request, metadata=md.metadata)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call.read()
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert violated_fields(info.value) == {field}


async def test_many_streams_with_a_stalled_one(md: MarketDataHarness) -> None:
    clients, target = 60, 10
    stalled = md.stub.StreamQuotes(
        pb.StreamQuotesRequest(symbols=["AAPL", "SPY"]), metadata=md.metadata
    )
    await stalled.initial_metadata()  # open, but never read

    async def client() -> dict[str, int]:
        call = md.stub.StreamQuotes(
            pb.StreamQuotesRequest(symbols=["AAPL", "SPY"]), metadata=md.metadata
        )
        seen: dict[str, int] = {}
        start: dict[str, int] = {}
        async for message in call:
            for q in message.quotes.quotes:
                start.setdefault(q.symbol, q.sequence)
                seen[q.symbol] = q.sequence
            if len(seen) == 2 and all(seen[s] - start[s] >= target for s in seen):
                break
        call.cancel()
        return seen

    results = await asyncio.wait_for(asyncio.gather(*(client() for _ in range(clients))), 60)
    assert len(results) == clients
    # The stalled stream is still open and holds at most one quote per symbol.
    subs = [s for s in md.hub._subscriptions if s.symbols == ("AAPL", "SPY")]
    assert subs and all(s.pending <= 2 for s in subs)
    # One upstream subscription per symbol for all the streams.
    assert md.hub.symbol_count == 2
    stalled.cancel()


async def test_shutdown_ends_streams_with_unavailable(tmp_path: Path) -> None:
    async with marketdata_server(tmp_path, MarketDataSettings(tick_rate=20)) as md:
        call = md.stub.StreamQuotes(pb.StreamQuotesRequest(symbols=["AAPL"]), metadata=md.metadata)
        await call.read()
        await md.running.server.stop(grace=2)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            while True:
                await call.read()
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_stream_ends_when_its_access_token_expires(tmp_path: Path) -> None:
    # No leeway, so the stream may run only the token's two seconds, not seconds more.
    async with marketdata_server(
        tmp_path, auth=AuthSettings(leeway=timedelta(0)), token_ttl=timedelta(seconds=2)
    ) as md:
        call = md.stub.StreamQuotes(pb.StreamQuotesRequest(symbols=["AAPL"]), metadata=md.metadata)
        first = await call.read()
        assert isinstance(first, pb.StreamQuotesResponse) and first.HasField("quotes")
        # The guard only turns "never ends" into a failure instead of a hang.
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async with asyncio.timeout(30):
                while True:
                    await call.read()
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "reconnect with a fresh token" in (info.value.details() or "")
    reason = error_details_pb2.ErrorInfo()
    assert any(d.Unpack(reason) for d in rpc_status(info.value).details)
    assert reason.reason == "TOKEN_EXPIRED"


async def test_provider_failure_is_unavailable(tmp_path: Path) -> None:
    with schwab_standin() as standin:
        standin.failures.extend([429] * 20)  # Retry-After: 0, so the retries are quick
        settings = MarketDataSettings(
            provider="schwab", schwab_base_url=standin.url, schwab_token=standin.token
        )
        async with marketdata_server(tmp_path, settings) as md:
            error = await expect(
                grpc.StatusCode.UNAVAILABLE,
                md.stub.GetQuote(pb.GetQuoteRequest(symbol="AAPL"), metadata=md.metadata),
            )
            assert "unavailable" in (error.details() or "")
            standin.failures.clear()
            got = await md.stub.GetQuote(pb.GetQuoteRequest(symbol="AAPL"), metadata=md.metadata)
            assert got.quote.source == quote_pb2.DATA_SOURCE_SCHWAB and got.quote.last == 190.0
            chain = await md.stub.GetOptionsChain(
                pb.GetOptionsChainRequest(underlying="AAPL"), metadata=md.metadata
            )
            assert len(chain.chain.options) == 4
            assert chain.chain.source == quote_pb2.DATA_SOURCE_SCHWAB


async def test_requires_a_token(md: MarketDataHarness) -> None:
    await expect(
        grpc.StatusCode.UNAUTHENTICATED, md.stub.GetQuote(pb.GetQuoteRequest(symbol="AAPL"))
    )
