"""Tick-to-event latency of alerts, against the quote stream's own tick-to-client latency in the
same run: a server process (alert_latency_server) holds `count` ACTIVE alerts on one symbol;
this process streams that symbol's quotes and the user's alert events, and creates one-shot
probe alerts that the next tick fires. An event's latency is its arrival here minus the quote
time of the tick that fired it (AlertTriggerValues.quote); a quote's is its arrival minus its
quote time. Both clocks are this machine's."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

from optix.alert.v1 import alert_pb2, alert_service_pb2
from optix.marketdata.v1 import marketdata_service_pb2
from optix_client.client import OptixClient

SYMBOL = "SPY"
PROBES = 300
TICK_RATE = 10.0
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Latencies:
    """p50/p99 in milliseconds of both paths."""

    event_p50: float
    event_p99: float
    quote_p50: float
    quote_p99: float
    events: int
    quotes: int
    # The tick reaching the monitor's engine (the rest is recording and delivering the event).
    detect_p50: float


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _measure(address: str) -> Latencies:
    client = OptixClient(address)
    try:
        await client.register(f"bench-{uuid.uuid4().hex}@example.com", "correct horse battery 42")
        quote_lag: list[float] = []
        event_lag: list[float] = []
        # Of which: the tick reaching the monitor (the event's fire time is its detection).
        detect_lag: list[float] = []
        done = asyncio.Event()
        arrived = asyncio.Event()

        async def quotes() -> None:
            stream = client.marketdata.StreamQuotes(
                marketdata_service_pb2.StreamQuotesRequest(symbols=[SYMBOL])
            )
            async for message in stream:
                now = time.time()
                for quote in message.quotes.quotes:
                    quote_lag.append((now - quote.quote_time.ToDatetime(UTC).timestamp()) * 1000)
                if done.is_set():
                    stream.cancel()
                    return

        async def events() -> None:
            stream = client.alert.StreamAlertEvents(
                alert_service_pb2.StreamAlertEventsRequest(parent="users/me/alerts/-")
            )
            async for message in stream:
                now = time.time()
                if message.WhichOneof("payload") != "events":
                    continue
                for event in message.events.events:
                    fired_by = event.trigger_values.quote.quote_time.ToDatetime(UTC).timestamp()
                    event_lag.append((now - fired_by) * 1000)
                    detected = event.fire_time.ToDatetime(UTC).timestamp()
                    detect_lag.append((detected - fired_by) * 1000)
                arrived.set()
                if len(event_lag) >= PROBES:
                    done.set()
                    stream.cancel()
                    return

        readers = [asyncio.create_task(quotes()), asyncio.create_task(events())]
        reply = await client.marketdata.GetQuote(
            marketdata_service_pb2.GetQuoteRequest(symbol=SYMBOL)
        )
        level = reply.quote.last * 0.5
        for _ in range(PROBES):
            # One probe at a time, each fired by a later tick than the one before.
            arrived.clear()
            await client.alert.CreateAlert(
                alert_service_pb2.CreateAlertRequest(
                    parent="users/me",
                    alert=alert_pb2.Alert(
                        symbol=SYMBOL,
                        condition=alert_pb2.AlertCondition(
                            price_above=alert_pb2.PriceThreshold(price=level)
                        ),
                    ),
                )
            )
            async with asyncio.timeout(30):
                await arrived.wait()
        async with asyncio.timeout(30):
            await done.wait()
        await asyncio.gather(*readers, return_exceptions=True)
        return Latencies(
            event_p50=_percentile(event_lag, 0.5),
            event_p99=_percentile(event_lag, 0.99),
            quote_p50=_percentile(quote_lag, 0.5),
            quote_p99=_percentile(quote_lag, 0.99),
            events=len(event_lag),
            quotes=len(quote_lag),
            detect_p50=_percentile(detect_lag, 0.5),
        )
    finally:
        await client.close()


def measure(count: int) -> Latencies:
    """Start the server with `count` stored alerts, measure, stop it."""
    with tempfile.TemporaryDirectory(prefix="optix-bench-alerts-") as tmp:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.bench.alert_latency_server",
                tmp,
                SYMBOL,
                str(count),
                str(TICK_RATE),
            ],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            assert server.stdout is not None
            while True:
                line = server.stdout.readline().decode()
                if not line:
                    raise RuntimeError("the alert bench server exited before it was ready")
                if line.startswith("ready "):
                    address = line.split()[1]
                    break
            return asyncio.run(_measure(address))
        finally:
            assert server.stdin is not None
            server.stdin.close()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()


def report(count: int) -> Latencies:
    """Measure and print the ratio of the two p99s (goal <= 2x)."""
    result = measure(count)
    print(
        f"tick-to-event with {count:,} active alerts: p50 {result.event_p50:.1f} ms, "
        f"p99 {result.event_p99:.1f} ms ({result.events} events; tick to detection p50 "
        f"{result.detect_p50:.1f} ms)"
    )
    print(
        f"tick-to-client of the quote stream:       p50 {result.quote_p50:.1f} ms, "
        f"p99 {result.quote_p99:.1f} ms ({result.quotes} quotes)"
    )
    print(f"ratio p99 event / p99 quote: {result.event_p99 / result.quote_p99:.2f}x (goal <= 2x)")
    return result


if __name__ == "__main__":
    report(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
