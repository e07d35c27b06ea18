"""Two replicas on one PostgreSQL database and one Redis: both monitors evaluate every tick, the
database's conditional write makes each one-shot alert fire once, changes made on one replica
reach the other's engine, and a stream on either replica carries events fired by both."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from optix.alert.v1 import alert_pb2, alert_service_pb2
from optix.marketdata.v1 import marketdata_service_pb2
from optix_client.client import OptixClient
from optix_server.alert.monitor import AlertMonitor
from tests.alert.harness import PASSWORD, SERVICES, TEST_ENV, Account, hosted_modules, price_above
from tests.support.backends import fresh_database_url, redis_namespace
from tests.support.server import RunningServer, make_settings, running_server

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

ONE_SHOTS = 30
LADDER = 20
# Ticks the run lasts after the one-shots fired (20 a second here).
EXTRA_TICKS = 100


def monitor_of(server: RunningServer) -> AlertMonitor:
    """The replica's alert monitor."""
    module = next(m for m in server.server.modules if m.name == "alert")
    monitor = module.extra["monitor"]
    assert isinstance(monitor, AlertMonitor)
    return monitor


async def test_two_replicas_fire_every_one_shot_once(tmp_path: Path) -> None:
    async with (
        fresh_database_url("postgres", tmp_path) as url,
        redis_namespace() as (redis, prefix),
    ):
        # One var dir: the replicas share signing keys and the secret box key, as a deployment
        # shares its secrets.
        settings = make_settings(
            url, tmp_path, redis_url=redis, redis_prefix=prefix, services=SERVICES, env=TEST_ENV
        )
        modules = hosted_modules(SERVICES, None)
        async with (
            running_server(settings, modules=modules) as a,
            running_server(settings, modules=modules) as b,
        ):
            client = OptixClient(a.address)
            reader = OptixClient(b.address)
            try:
                reply = await client.register("replicas@example.com", PASSWORD)
                await reader.login("replicas@example.com", PASSWORD)
                owner = Account(client, reply.user.name.removeprefix("users/"))
                await _run(owner, reader, monitor_of(a), monitor_of(b))
            finally:
                await client.close()
                await reader.close()


async def _run(owner: Account, reader: OptixClient, a: AlertMonitor, b: AlertMonitor) -> None:
    quote = await owner.client.marketdata.GetQuote(
        marketdata_service_pb2.GetQuoteRequest(symbol="SPY")
    )
    price = quote.quote.last
    # The stream is on replica B; the alerts are made through replica A.
    stream = reader.alert.StreamAlertEvents(
        alert_service_pb2.StreamAlertEventsRequest(parent="users/me/alerts/-", after_event_id=0)
    )
    holding = [
        (await owner.create("SPY", price_above(price * 0.5))).alert.name for _ in range(ONE_SHOTS)
    ]
    ladder = [
        (
            await owner.create(
                "SPY",
                alert_pb2.AlertCondition(
                    price_crossing=alert_pb2.PriceCrossing(
                        price=price * (1 + step * 0.00002),
                        direction=alert_pb2.MOVE_DIRECTION_EITHER,
                    )
                ),
            )
        ).alert.name
        for step in range(-LADDER // 2, LADDER // 2 + 1)
        if step
    ]
    ids: list[int] = []
    alerts_fired: Counter[str] = Counter()
    async with asyncio.timeout(60):
        async for message in stream:
            if message.WhichOneof("payload") != "events":
                continue
            for event in message.events.events:
                ids.append(event.event_id)
                alerts_fired[event.alert] += 1
            if all(name in alerts_fired for name in holding):
                break
    stream.cancel()
    # The run goes on for more ticks (crossings keep racing); then the final history.
    await _ticks(owner, EXTRA_TICKS)
    history = await owner.events()
    per_alert = Counter(e.alert for e in history)
    assert all(count == 1 for count in per_alert.values()), per_alert.most_common(3)
    assert set(holding) <= set(per_alert)
    assert set(per_alert) <= set(holding) | set(ladder)
    # The stream on B carried each event once, in id order.
    assert ids == sorted(set(ids))
    assert all(count == 1 for count in alerts_fired.values())
    stored = {a.name: a for a in await owner.list_all()}
    for name in holding:
        assert stored[name].state == alert_pb2.ALERT_STATE_COMPLETED
        assert stored[name].fire_count == 1
    for name in ladder:
        assert stored[name].fire_count == per_alert.get(name, 0)
    # Together the replicas recorded each firing once.
    assert a.fired + b.fired == len(history)
    # A change made through A reaches B's engine (B evaluated the same alerts).
    quiet = (await owner.create("SPY", price_above())).alert.name.rsplit("/", 1)[1]
    async with asyncio.timeout(10):
        await b.until_held(quiet)  # the change crosses Redis


async def _ticks(owner: Account, count: int) -> None:
    """Wait until `count` more SPY ticks have been streamed."""
    stream = owner.client.marketdata.StreamQuotes(
        marketdata_service_pb2.StreamQuotesRequest(symbols=["SPY"])
    )
    seen = 0
    async with asyncio.timeout(60):
        async for message in stream:
            if message.WhichOneof("payload") == "quotes":
                seen += len(message.quotes.quotes)
                if seen >= count:
                    break
    stream.cancel()
