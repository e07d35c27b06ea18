"""The Schwab provider against a local stand-in of its market data API (no internet)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from optix_server.infra.request_rate import SlidingWindowLimiter
from optix_server.marketdata.models import BarInterval, DataSource, ExpirationType, Quote
from optix_server.marketdata.providers.base import ProviderError, UnknownSymbolError
from optix_server.marketdata.providers.schwab import SchwabProvider, TokenSource
from tests.support.schwab_standin import QUOTE_MS, StandIn, schwab_standin


@pytest.fixture
def standin() -> Iterator[StandIn]:
    with schwab_standin() as running:
        yield running


@pytest.fixture
async def provider(standin: StandIn) -> AsyncIterator[SchwabProvider]:
    p = SchwabProvider(
        base_url=standin.url,
        token=TokenSource(standin.token),
        poll_interval=0.01,
        backoff_base=0.001,
    )
    yield p
    await p.close()


async def test_quotes(provider: SchwabProvider, standin: StandIn) -> None:
    quotes = await provider.get_quotes(["AAPL", "MSFT", "NOPE"])
    assert set(quotes) == {"AAPL", "MSFT"}
    q = quotes["AAPL"]
    assert (q.bid, q.ask, q.last, q.previous_close) == (189.9, 190.1, 190.0, 188.0)
    assert q.source is DataSource.SCHWAB
    assert q.quote_time == datetime.fromtimestamp(QUOTE_MS / 1000, UTC)
    path, query, auth = standin.requests[-1]
    assert path == "/marketdata/v1/quotes"
    assert query["symbols"] == ["AAPL,MSFT,NOPE"]
    assert auth == "Bearer test-token"


async def test_retries_429_and_5xx_then_succeeds(
    provider: SchwabProvider, standin: StandIn
) -> None:
    standin.failures.extend([429, 503, 500])
    quotes = await provider.get_quotes(["AAPL"])
    assert "AAPL" in quotes
    assert provider.http.retries == 3
    assert len(standin.requests) == 4


async def test_gives_up_as_provider_error(provider: SchwabProvider, standin: StandIn) -> None:
    standin.failures.extend([503] * 10)
    with pytest.raises(ProviderError):
        await provider.get_quotes(["AAPL"])
    assert len(standin.requests) == 5


async def test_bad_token_is_a_provider_error(standin: StandIn) -> None:
    p = SchwabProvider(base_url=standin.url, token=TokenSource("wrong"), backoff_base=0.001)
    try:
        with pytest.raises(ProviderError, match="401"):
            await p.get_quotes(["AAPL"])
    finally:
        await p.close()


async def test_token_file_is_reread_on_401(standin: StandIn, tmp_path: Path) -> None:
    token_file = tmp_path / "token.json"
    token_file.write_text(json.dumps({"token": {"access_token": "stale"}}))
    p = SchwabProvider(base_url=standin.url, token=TokenSource(token_file=token_file))
    try:
        # An external refresher rotates the file; the provider picks it up on the 401.
        token_file.write_text(json.dumps({"token": {"access_token": standin.token}}))
        p.http._token._cached = "stale"  # as if read before the rotation
        assert "AAPL" in await p.get_quotes(["AAPL"])
    finally:
        await p.close()


async def test_chain_and_expirations(provider: SchwabProvider, standin: StandIn) -> None:
    chain = await provider.get_chain("AAPL", date(2026, 6, 1), date(2026, 6, 30))
    assert chain.underlying_quote.mark == pytest.approx(190.0)
    assert sorted(c.contract.format() for c in chain.contracts) == [
        "AAPL  260619C00180000",
        "AAPL  260619C00200000",
        "AAPL  260619P00180000",
        "AAPL  260619P00200000",
    ]
    _, query, _ = standin.requests[-1]
    assert query["fromDate"] == ["2026-06-01"] and query["toDate"] == ["2026-06-30"]
    assert query["includeUnderlyingQuote"] == ["true"]
    expirations = await provider.list_expirations("AAPL")
    assert [(e.date, e.type) for e in expirations] == [
        (date(2026, 1, 9), ExpirationType.WEEKLY),
        (date(2026, 6, 19), ExpirationType.STANDARD),
    ]
    with pytest.raises(UnknownSymbolError):
        await provider.get_chain("NOPE", None, None)
    with pytest.raises(UnknownSymbolError):
        await provider.list_expirations("NOPE")


async def test_price_history_and_hourly_merge(provider: SchwabProvider, standin: StandIn) -> None:
    start = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
    bars = await provider.get_price_history(
        "AAPL", BarInterval.FIVE_MINUTES, start, start + timedelta(hours=1)
    )
    assert [b.start_time for b in bars] == [start + timedelta(minutes=5 * i) for i in range(4)]
    _, query, _ = standin.requests[-1]
    assert (query["frequencyType"], query["frequency"]) == (["minute"], ["5"])
    assert query["startDate"] == [str(int(start.timestamp() * 1000))]
    hourly = await provider.get_price_history(
        "AAPL", BarInterval.ONE_HOUR, start, start + timedelta(hours=3)
    )
    # Four 30-minute candles from 15:00 make two hourly bars.
    assert [(b.start_time.hour, b.open, b.close, b.volume) for b in hourly] == [
        (15, 100.0, 101.5, 2001),
        (16, 102.0, 103.5, 2005),
    ]


async def test_feed_polls_and_emits_changes_only(
    provider: SchwabProvider, standin: StandIn
) -> None:
    got: list[Quote] = []
    second = asyncio.Event()

    async def sink(q: Quote) -> None:
        got.append(q)
        if len(got) == 2:
            second.set()

    task = asyncio.create_task(provider.run_feed({"AAPL"}, sink))
    try:
        # Several polls see the same quote time: only the first is emitted.
        assert await asyncio.to_thread(standin.wait_for_requests, 3)
        assert len(got) == 1
        standin.quote_ms += 1000
        await asyncio.wait_for(second.wait(), 10)
    finally:
        task.cancel()
    assert got[1].sequence > got[0].sequence


async def test_rate_limiter_holds_the_window() -> None:
    now = [0.0]
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = SlidingWindowLimiter(120, 60.0, clock=lambda: now[0], sleep=fake_sleep)
    for _ in range(120):
        await limiter.acquire()
    assert slept == []
    await limiter.acquire()  # the 121st request in the same minute waits for the window
    assert slept == [60.0]
    assert limiter.in_window <= 120
