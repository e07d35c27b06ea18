"""The replay provider: recorded ticks played back in order, at real or accelerated speed."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from optix_server.marketdata.models import BarInterval, DataSource, ExpirationType, Quote
from optix_server.marketdata.providers.base import UnknownSymbolError
from optix_server.marketdata.providers.replay import ReplayFileError, ReplayProvider

CSV = """timestamp,symbol,bid,ask,last,volume,bid_size,ask_size,open_interest,previous_close
2026-01-05T15:00:00Z,AAPL,189.90,190.10,190.00,1000,100,200,,188.00
2026-01-05T15:00:01Z,aapl  260116c00190000,3.10,3.30,3.20,5,10,10,1200,
2026-01-05T15:00:01Z,AAPL  260116P00190000,2.90,3.10,3.00,7,10,10,900,
2026-01-05T15:00:30Z,AAPL,190.40,190.60,190.50,2500,100,200,,188.00
2026-01-05T15:01:10Z,AAPL,189.40,189.60,189.50,4000,100,200,,188.00
1767625320000,MSFT,409.0,411.0,410.0,100,1,1,,405.0
"""


@pytest.fixture
def ticks_file(tmp_path: Path) -> Path:
    path = tmp_path / "ticks.csv"
    path.write_text(CSV)
    return path


async def test_plays_everything_and_keeps_latest(ticks_file: Path) -> None:
    provider = ReplayProvider(ticks_file, speed=0)
    await provider.start()
    try:
        await asyncio.wait_for(provider.finished.wait(), 10)
        quotes = await provider.get_quotes(["AAPL", "MSFT", "AAPL  260116C00190000", "NOPE"])
        assert set(quotes) == {"AAPL", "MSFT", "AAPL  260116C00190000"}
        aapl = quotes["AAPL"]
        assert (aapl.last, aapl.high, aapl.low, aapl.open) == (189.5, 190.5, 189.5, 190.0)
        assert aapl.sequence == 3 and aapl.source is DataSource.REPLAY
        assert aapl.quote_time == datetime(2026, 1, 5, 15, 1, 10, tzinfo=UTC)
        chain = await provider.get_chain("AAPL", None, None)
        assert {c.contract.format() for c in chain.contracts} == {
            "AAPL  260116C00190000",
            "AAPL  260116P00190000",
        }
        assert [e.date for e in await provider.list_expirations("AAPL")] == [date(2026, 1, 16)]
        with pytest.raises(UnknownSymbolError):
            await provider.list_expirations("MSFT")
        start = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
        bars = await provider.get_price_history(
            "AAPL", BarInterval.ONE_MINUTE, start, start + timedelta(minutes=5)
        )
        assert [(b.open, b.high, b.low, b.close, b.volume) for b in bars] == [
            (190.0, 190.5, 190.0, 190.5, 2500),
            (189.5, 189.5, 189.5, 189.5, 1500),
        ]
    finally:
        await provider.close()


async def test_accelerated_speed_waits_scaled_gaps(ticks_file: Path) -> None:
    now = [0.0]
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    provider = ReplayProvider(ticks_file, speed=10, clock=lambda: now[0], sleep=fake_sleep)
    got: list[Quote] = []
    feed = asyncio.create_task(provider.run_feed({"AAPL"}, _collect(got)))
    await asyncio.sleep(0)  # let the feed register before playback starts
    await provider.start()
    try:
        await asyncio.wait_for(provider.finished.wait(), 10)
    finally:
        feed.cancel()
        await provider.close()
    # 1 s, 29 s, 40 s and 50 s gaps at 10x speed.
    assert waits == pytest.approx([0.1, 2.9, 4.0, 5.0])
    assert [q.last for q in got] == [190.0, 190.5, 189.5]


async def test_loop_keeps_time_and_sequence_increasing(ticks_file: Path) -> None:
    provider = ReplayProvider(ticks_file, speed=0, loop=True)
    got: list[Quote] = []
    three = asyncio.Event()

    async def sink(q: Quote) -> None:
        got.append(q)
        if len(got) == 3:
            three.set()

    feed = asyncio.create_task(provider.run_feed({"MSFT"}, sink))
    await asyncio.sleep(0)  # let the feed register before playback starts
    await provider.start()
    try:
        await asyncio.wait_for(three.wait(), 10)
    finally:
        feed.cancel()
        await provider.close()
    assert [q.sequence for q in got[:3]] == [1, 2, 3]
    assert got[0].quote_time < got[1].quote_time < got[2].quote_time


async def test_malformed_file_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,symbol,bid,ask,last,volume\n2026-01-05T15:00:00Z,AA PL X,1,1,1,1\n")
    with pytest.raises(ReplayFileError, match=":2:"):
        await ReplayProvider(bad).start()


async def played(path: Path) -> ReplayProvider:
    """A replay of `path`, played to its end (the caller closes it)."""
    provider = ReplayProvider(path, speed=0)
    await provider.start()
    await asyncio.wait_for(provider.finished.wait(), 10)
    return provider


def recording(tmp_path: Path, name: str, rows: str) -> Path:
    """A replay file of `rows` under the standard header."""
    path = tmp_path / name
    path.write_text("timestamp,symbol,bid,ask,last,volume,previous_close\n" + rows)
    return path


async def test_an_expiration_leaves_the_replay_after_its_last_sessions_close(
    tmp_path: Path,
) -> None:
    # Good Friday 2025 (April's third Friday): its monthly is recorded on Thursday the 17th.
    options = (
        "2025-04-17T14:00:00Z,AAPL  250417C00190000,3.10,3.20,3.15,5,\n"
        "2025-04-17T14:00:00Z,AAPL  250425C00190000,4.10,4.20,4.15,5,\n"
    )
    for close, listed in (("19:59:59", True), ("20:00:01", False)):  # 16:00 EDT = 20:00 UTC
        path = recording(
            tmp_path, f"{listed}.csv", options + f"2025-04-17T{close}Z,AAPL,190,190.02,190.01,9,\n"
        )
        provider = await played(path)
        try:
            expirations = await provider.list_expirations("AAPL")
            chain = await provider.get_chain("AAPL", None, None)
        finally:
            await provider.close()
        dates = {e.date: e.type for e in expirations}
        in_chain = {m.contract.expiration for m in chain.contracts}
        assert (date(2025, 4, 17) in dates) is listed
        assert (date(2025, 4, 17) in in_chain) is listed
        assert dates[date(2025, 4, 25)] is ExpirationType.WEEKLY
        assert set(dates) == in_chain
        if listed:
            assert dates[date(2025, 4, 17)] is ExpirationType.STANDARD


async def test_recorded_prices_are_put_on_the_tick(tmp_path: Path) -> None:
    path = recording(
        tmp_path,
        "noisy.csv",
        "2026-01-05T15:00:00Z,AAPL,189.36999999999998,189.38000000000001,189.371,9,188.0\n"
        # AAPL options quote in nickels from 3.00 (Penny Interval Program), pennies below.
        "2026-01-05T15:00:01Z,AAPL  260116C00190000,3.12,3.28,3.2,5,\n"
        "2026-01-05T15:00:01Z,AAPL  260116P00190000,2.904,2.96,2.93,5,\n"
        # Any other class quotes in nickels below 3.00.
        "2026-01-05T15:00:01Z,ZZZZ  260116P00050000,1.02,1.13,1.07,5,\n",
    )
    provider = await played(path)
    try:
        quotes = await provider.get_quotes(
            ["AAPL", "AAPL  260116C00190000", "AAPL  260116P00190000", "ZZZZ  260116P00050000"]
        )
    finally:
        await provider.close()
    got = {s: (q.bid, q.ask, q.last) for s, q in quotes.items()}
    assert got == {
        "AAPL": (189.37, 189.38, 189.37),
        "AAPL  260116C00190000": (3.1, 3.3, 3.2),
        "AAPL  260116P00190000": (2.9, 2.96, 2.93),
        "ZZZZ  260116P00050000": (1.0, 1.15, 1.05),
    }
    aapl = quotes["AAPL"]
    assert (repr(aapl.change), repr(aapl.mark), repr(aapl.change_percent)) == (
        "1.37",
        "189.375",
        "0.7287",
    )


def _collect(into: list[Quote]):  # type: ignore[no-untyped-def]
    async def sink(q: Quote) -> None:
        into.append(q)

    return sink
