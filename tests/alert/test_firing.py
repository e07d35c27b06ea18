"""Alerts fire on live quotes from the simulated market, once when they are one-shots, and their
events reach the user: in history, replayed on a stream from the last id seen, then live."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
import trustme
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from optix.alert.v1 import alert_event_pb2, alert_pb2, alert_service_pb2
from optix.marketdata.v1 import marketdata_service_pb2
from optix_client.errors import OptixError
from optix_server.alert.config import AlertSettings, WebhookSettings
from optix_server.alert.domain import DeliveryState
from optix_server.alert.events import EventRepository
from optix_server.alert.monitor import AlertMonitor
from optix_server.alert.webhooks.sender import WebhookSender
from optix_server.alert.webhooks.signing import verify_signature
from tests.alert.harness import Account, Stack, alert_stack, price_above
from tests.support.sdk_errors import expect, invalid
from tests.support.webhook_receiver import ReceivedRequest, Reply, WebhookReceiver
from tests.user.harness import ManualClock

pytestmark = pytest.mark.asyncio(loop_scope="package")

# Generous: the simulated market ticks 20 times a second here.
WAIT = 30.0


async def last_price(account: Account, symbol: str) -> float:
    """The symbol's last trade now."""
    reply = await account.client.marketdata.GetQuote(
        marketdata_service_pb2.GetQuoteRequest(symbol=symbol)
    )
    return reply.quote.last


async def collect(
    account: Account,
    count: int,
    *,
    after: int | None = None,
    parent: str = "users/me/alerts/-",
) -> list[tuple[alert_event_pb2.AlertEvent, bool]]:
    """The first `count` events of a new stream (with their replay flags)."""
    request = alert_service_pb2.StreamAlertEventsRequest(parent=parent)
    if after is not None:
        request.after_event_id = after
    got: list[tuple[alert_event_pb2.AlertEvent, bool]] = []
    stream = account.alerts.StreamAlertEvents(request)
    async with asyncio.timeout(WAIT):
        async for message in stream:
            if message.WhichOneof("payload") == "events":
                got.extend((e, message.events.replay) for e in message.events.events)
            if len(got) >= count:
                break
    stream.cancel()
    return got


async def fired(account: Account, name: str) -> alert_pb2.Alert:
    """The alert once it has fired (read after its event arrived)."""
    reply = await account.alerts.GetAlert(alert_service_pb2.GetAlertRequest(name=name))
    return reply.alert


async def test_a_one_shot_threshold_fires_once_with_its_event(stack: Stack) -> None:
    owner = await stack.account()
    price = await last_price(owner, "AAPL")
    # Below the market: it holds on the first tick.
    created = await owner.create("AAPL", price_above(price * 0.5), note="take profits")
    [(event, _)] = await collect(owner, 1, after=0)
    alert = await fired(owner, created.alert.name)
    assert alert.state == alert_pb2.ALERT_STATE_COMPLETED and alert.fire_count == 1
    assert alert.HasField("last_fire_time") and alert.etag != created.alert.etag
    assert event.alert == alert.name and event.event_id >= 1
    assert event.name == f"{alert.name}/events/{event.event_id}"
    assert event.alert_state == alert_pb2.ALERT_STATE_COMPLETED
    assert event.webhook_delivery == alert_event_pb2.WEBHOOK_DELIVERY_STATE_NOT_CONFIGURED
    values = event.trigger_values
    assert values.quote.symbol == "AAPL" and values.observed_value == values.quote.last
    assert values.observed_value > price * 0.5 and not values.HasField("reference_value")
    assert event.message.startswith("AAPL is above") and event.message.endswith("take profits")
    assert event.condition == alert.condition and event.symbol == "AAPL"
    # One event, however many ticks have passed since.
    history = await owner.events()
    assert [e.event_id for e in history] == [event.event_id]
    assert await owner.events(alert.name) == history
    # A completed alert is re-armed by EnableAlert and fires again.
    await owner.alerts.EnableAlert(alert_service_pb2.EnableAlertRequest(name=alert.name))
    [(second, _)] = await collect(owner, 1, after=event.event_id)
    assert second.event_id > event.event_id
    assert (await fired(owner, alert.name)).fire_count == 2


async def test_crossings_fire_on_a_transition_only(stack: Stack) -> None:
    owner = await stack.account()
    price = await last_price(owner, "MSFT")

    def crossing(
        level: float, direction: alert_pb2.MoveDirection.ValueType
    ) -> alert_pb2.AlertCondition:
        return alert_pb2.AlertCondition(
            price_crossing=alert_pb2.PriceCrossing(price=level, direction=direction)
        )

    # Levels a tick or two apart on both sides of the market: whichever way it moves, it
    # crosses one soon.
    ladder = [price * (1 + step * 0.00002) for step in range(-10, 11) if step]
    levels = {}
    for level in ladder:
        created = await owner.create("MSFT", crossing(level, alert_pb2.MOVE_DIRECTION_EITHER))
        levels[created.alert.name] = created.alert.condition.price_crossing.price
    away = await owner.create("MSFT", crossing(price * 10, alert_pb2.MOVE_DIRECTION_UP))
    [(event, _)] = await collect(owner, 1, after=0)
    assert event.alert in levels
    level = levels[event.alert]
    values = event.trigger_values
    # The previous value was on the other side of the level.
    assert values.HasField("reference_value")
    assert (values.reference_value < level <= values.observed_value) or (
        values.reference_value > level >= values.observed_value
    )
    assert (await fired(owner, away.alert.name)).fire_count == 0


async def test_every_time_alerts_wait_out_their_cooldown(stack: Stack) -> None:
    owner = await stack.account()
    price = await last_price(owner, "NVDA")
    created = await owner.create(
        "NVDA",
        price_above(price * 0.5),
        frequency=alert_pb2.ALERT_FREQUENCY_EVERY_TIME,
        cooldown=Duration(seconds=3600),
    )
    [(event, _)] = await collect(owner, 1, after=0)
    alert = await fired(owner, created.alert.name)
    assert alert.state == alert_pb2.ALERT_STATE_ACTIVE and alert.fire_count == 1
    assert event.alert_state == alert_pb2.ALERT_STATE_ACTIVE
    # Ticks keep coming; within the cooldown nothing more fires. A second, fresh alert on the
    # same symbol fires meanwhile, so these ticks were evaluated.
    probe = await owner.create("NVDA", price_above(price * 0.5))
    events = await collect(owner, 1, after=event.event_id)
    assert [e.alert for e, _ in events] == [probe.alert.name]
    assert (await fired(owner, alert.name)).fire_count == 1


async def test_a_stream_resumes_from_the_last_event_id_without_loss(stack: Stack) -> None:
    owner = await stack.account()
    price = await last_price(owner, "AMZN")
    first = await owner.create("AMZN", price_above(price * 0.5))
    [(seen, _)] = await collect(owner, 1, after=0)
    assert seen.alert == first.alert.name
    # Offline: three alerts fire while no stream is open.
    missed = [await owner.create("AMZN", price_above(price * 0.4)) for _ in range(3)]
    names = {m.alert.name for m in missed}
    history: list[alert_event_pb2.AlertEvent] = []
    async with asyncio.timeout(WAIT):
        while len(history) < 4:
            history = await owner.events()
            await asyncio.sleep(0.05)  # polling history: the user's app is offline here
    # Reconnecting with the last id gets exactly the missed ones, replayed, in id order...
    replayed = await collect(owner, 3, after=seen.event_id)
    assert {e.alert for e, _ in replayed} == names
    assert all(flag for _, flag in replayed)
    ids = [e.event_id for e, _ in replayed]
    assert ids == sorted(ids) and ids[0] > seen.event_id
    # ...then live ones on the same stream, with no duplicate.
    request = alert_service_pb2.StreamAlertEventsRequest(
        parent="users/me/alerts/-", after_event_id=seen.event_id
    )
    stream = owner.alerts.StreamAlertEvents(request)
    got: list[tuple[int, bool]] = []
    created_live = False
    async with asyncio.timeout(WAIT):
        async for message in stream:
            if message.WhichOneof("payload") == "events":
                got.extend((e.event_id, message.events.replay) for e in message.events.events)
            if len(got) >= 3 and not created_live:
                created_live = True
                await owner.create("AMZN", price_above(price * 0.3))
            if len(got) >= 4:
                break
    stream.cancel()
    assert [i for i, _ in got] == [*ids, max(ids) + 1]
    assert [flag for _, flag in got] == [True, True, True, False]


async def test_streams_and_history_of_one_alert(stack: Stack) -> None:
    owner = await stack.account()
    price = await last_price(owner, "META")
    one = await owner.create("META", price_above(price * 0.5))
    other = await owner.create("META", price_above(price * 0.5))
    got = await collect(owner, 1, after=0, parent=one.alert.name)
    assert [e.alert for e, _ in got] == [one.alert.name]
    assert [e.alert for e in await owner.events(other.alert.name)] in ([], [other.alert.name])
    # A deleted alert's events stay listable.
    await owner.alerts.DeleteAlert(alert_service_pb2.DeleteAlertRequest(name=one.alert.name))
    assert [e.alert for e in await owner.events(one.alert.name)] == [one.alert.name]
    await expect(
        grpc.StatusCode.NOT_FOUND,
        owner.events(one.alert.name.rsplit("/", 1)[0] + "/0123456789abcdef0123456789abcdef"),
    )


async def test_event_requests_are_validated(stack: Stack) -> None:
    owner = await stack.account()
    stamp = Timestamp()
    stamp.FromDatetime(datetime.now(UTC))
    await invalid(
        owner.alerts.ListAlertEvents(
            alert_service_pb2.ListAlertEventsRequest(
                parent="users/me/alerts/-", start_time=stamp, end_time=stamp
            )
        ),
        "end_time",
    )
    await invalid(
        owner.alerts.ListAlertEvents(
            alert_service_pb2.ListAlertEventsRequest(parent="users/me/alerts/-", page_size=-1)
        ),
        "page_size",
    )
    stream = owner.alerts.StreamAlertEvents(
        alert_service_pb2.StreamAlertEventsRequest(
            parent="users/me/alerts/-", heartbeat_interval=Duration(seconds=0)
        )
    )
    await invalid(_first(stream), "heartbeat_interval")
    heartbeat = owner.alerts.StreamAlertEvents(
        alert_service_pb2.StreamAlertEventsRequest(
            parent="users/me/alerts/-", heartbeat_interval=Duration(seconds=1)
        )
    )
    message = await _first(heartbeat)
    assert message.WhichOneof("payload") == "heartbeat"


async def _first(
    stream: AsyncIterable[alert_service_pb2.StreamAlertEventsResponse],
) -> alert_service_pb2.StreamAlertEventsResponse:
    async for message in stream:
        return message
    raise AssertionError("the stream ended without a message")


async def test_alerts_expire_on_time_without_a_firing(tmp_path: Path) -> None:
    clock = ManualClock(datetime.now(UTC))
    async with alert_stack("sqlite", tmp_path, clock=clock) as stack:
        owner = await stack.account()
        expires = Timestamp()
        expires.FromDatetime(clock.now() + timedelta(minutes=5))
        created = await owner.create("AAPL", price_above(1e9), expire_time=expires)
        monitor = next(m for m in stack.running.server.modules if m.name == "alert").extra[
            "monitor"
        ]
        assert isinstance(monitor, AlertMonitor)
        alert_id = created.alert.name.rsplit("/", 1)[1]
        async with asyncio.timeout(WAIT):
            await monitor.until_held(alert_id)
        clock.advance(timedelta(minutes=6))
        # The sweep moves it to EXPIRED and tells every monitor, quotes or not.
        async with asyncio.timeout(WAIT):
            await monitor.until_held(alert_id, held=False)
        alert = await fired(owner, created.alert.name)
        assert alert.state == alert_pb2.ALERT_STATE_EXPIRED
        await expect(
            grpc.StatusCode.FAILED_PRECONDITION,
            owner.alerts.EnableAlert(alert_service_pb2.EnableAlertRequest(name=alert.name)),
        )
        assert await owner.events() == []


async def test_shutdown_ends_event_streams_with_unavailable(tmp_path: Path) -> None:
    async with alert_stack("sqlite", tmp_path) as stack:
        owner = await stack.account()
        stream = owner.alerts.StreamAlertEvents(
            alert_service_pb2.StreamAlertEventsRequest(
                parent="users/me/alerts/-", heartbeat_interval=Duration(seconds=1)
            )
        )
        first = await stream.read()
        assert isinstance(first, alert_service_pb2.StreamAlertEventsResponse)
        await stack.running.server.stop(grace=2)
        with pytest.raises(OptixError) as info:
            while True:
                await stream.read()
        assert info.value.code == grpc.StatusCode.UNAVAILABLE


async def test_events_past_their_retention_are_pruned(stack: Stack) -> None:
    owner = await stack.account()
    price = await last_price(owner, "QQQ")
    await owner.create("QQQ", price_above(price * 0.5))
    [(event, _)] = await collect(owner, 1, after=0)
    events = next(m for m in stack.running.server.modules if m.name == "alert").extra[
        "event_repository"
    ]
    assert isinstance(events, EventRepository)
    fired_at = event.fire_time.ToDatetime(UTC)
    await events.prune(fired_at)  # older events of earlier tests go; this one is not older
    assert await owner.events() == [event]
    assert await events.prune(fired_at + timedelta(microseconds=1)) >= 1
    assert await owner.events() == []


async def test_a_firing_is_delivered_to_the_alerts_webhook_signed(tmp_path: Path) -> None:
    ca = trustme.CA()
    bundle = tmp_path / "receiver-ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    arrived = asyncio.Event()

    async def answer(request: ReceivedRequest) -> Reply:
        arrived.set()
        return Reply(204)

    receiver = WebhookReceiver(ca, responder=answer)
    await receiver.start()
    settings = AlertSettings(
        # The receiver listens on loopback: allowed here, refused by default.
        allow_private_webhooks=True,
        webhook=WebhookSettings(ca_bundle=str(bundle)),
    )
    try:
        async with alert_stack("sqlite", tmp_path, settings=settings) as stack:
            recorded = asyncio.Event()
            sender = next(m for m in stack.running.server.modules if m.name == "alert").extra[
                "webhook_sender"
            ]
            assert isinstance(sender, WebhookSender)
            sender.listen(
                lambda record: recorded.set() if record.state is DeliveryState.DELIVERED else None
            )
            owner = await stack.account()
            price = await last_price(owner, "TSLA")
            created = await owner.create(
                "TSLA",
                price_above(price * 0.5),
                delivery=alert_pb2.AlertDelivery(webhook_url=receiver.url()),
            )
            secret = created.webhook_signing_secret
            [(event, _)] = await collect(owner, 1, after=0)
            async with asyncio.timeout(WAIT):
                await arrived.wait()
            [request] = receiver.requests
            assert request.event_id == str(event.event_id)
            assert verify_signature(secret, request.headers["optix-signature"], request.body)
            body = json.loads(request.body)
            assert body["eventId"] == str(event.event_id) and body["alert"] == event.alert
            assert secret not in request.body.decode()
            # The event's delivery state follows, once the sender has recorded the 204.
            async with asyncio.timeout(WAIT):
                await recorded.wait()
            [stored] = await owner.events()
            assert stored.webhook_delivery == alert_event_pb2.WEBHOOK_DELIVERY_STATE_DELIVERED
    finally:
        await receiver.close()
