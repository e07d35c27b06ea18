"""Cross-process quote delivery through Redis: a feed owner in another OS process publishes,
a server that owns no feed streams its ticks to clients."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from optix.marketdata.v1 import marketdata_service_pb2 as pb
from optix_server.marketdata.config import MarketDataSettings
from tests.marketdata.harness import marketdata_server

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.redis


async def test_ticks_cross_processes_through_redis(
    redis_ns: tuple[str, str], tmp_path: Path
) -> None:
    url, prefix = redis_ns
    # A shared epoch and seed: both processes simulate the very same market.
    epoch = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    owner = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.marketdata.feed_owner_process",
        url,
        prefix,
        epoch.isoformat(),
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert owner.stdout is not None and owner.stdin is not None
        # Log lines (such as taking the feed lease) may come first.
        async with asyncio.timeout(60):
            while (line := await owner.stdout.readline()).strip() != b"ready":
                assert line, "the feed owner exited before it was ready"
        settings = MarketDataSettings(
            feed_owner=False, quote_cache_ttl=30, seed=5, tick_rate=20, sim_epoch=epoch
        )
        async with marketdata_server(tmp_path, settings, redis_url=url, redis_prefix=prefix) as md:
            assert md.extra["publisher"] is None  # this replica runs no feed of its own
            call = md.stub.StreamQuotes(
                pb.StreamQuotesRequest(symbols=["NVDA", "QQQ"]), metadata=md.metadata
            )
            received: dict[str, list[int]] = {"NVDA": [], "QQQ": []}
            carried: list[set[str]] = []
            async for message in call:
                for q in message.quotes.quotes:
                    received[q.symbol].append(q.sequence)
                carried.append({q.symbol for q in message.quotes.quotes})
                # A snapshot, then live ticks: several per symbol prove the feed crosses over.
                if all(len(seqs) >= 6 for seqs in received.values()):
                    break
            call.cancel()
            # The owner publishes a tick of both symbols in one burst: once live, each
            # message carries both (one write per stream per tick, not one per symbol).
            assert all(symbols == {"NVDA", "QQQ"} for symbols in carried[-4:]), carried
            # The owner's ticks also refresh the shared quote cache this replica reads.
            for seqs in received.values():
                assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
            quote = await md.stub.GetQuote(pb.GetQuoteRequest(symbol="NVDA"), metadata=md.metadata)
            assert quote.quote.sequence >= received["NVDA"][-1]
    finally:
        if owner.stdin is not None:
            owner.stdin.close()
        try:
            await asyncio.wait_for(owner.wait(), 15)
        except TimeoutError:
            owner.kill()
            await owner.wait()
