"""Another user's alerts are NOT_FOUND, and calls without a user's token UNAUTHENTICATED, on every
RPC of AlertService (enumerated from its descriptor, so a new method is covered); nothing is
written by a refused call."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message

from optix.alert.v1 import alert_service_pb2
from optix.marketdata.v1 import marketdata_service_pb2
from optix_client.client import OptixClient
from tests.alert.harness import METHODS, Account, Stack, price_above, request_for
from tests.support.sdk_errors import expect

pytestmark = pytest.mark.asyncio(loop_scope="package")


async def _call(client: OptixClient, method: MethodDescriptor, request: Message) -> object:
    """Call `method` (unary, or a stream read to its first message)."""
    handler = getattr(client.alert, method.name)
    if method.server_streaming:
        stream = handler(request)
        async for first in stream:
            stream.cancel()
            return first
        return None
    return await handler(request)


def _id(name: str) -> str:
    return name.rsplit("/", 1)[1]


@pytest.mark.parametrize("method", METHODS, ids=lambda m: str(m.name))
async def test_another_users_alert_is_not_found(stack: Stack, method: MethodDescriptor) -> None:
    alice = await stack.account()
    bob = await stack.account()
    target = (await alice.create("MSFT")).alert
    target_id = _id(target.name)
    guess = uuid.uuid4().hex
    alice_before = await alice.list_all()
    mine = (await bob.create("AAPL")).alert
    aims = {
        "her name": alice.name(target_id),
        "her id under me": alice.name(target_id, user="me"),
        "her id under his id": bob.name(target_id),
        "a guessed id under her name": alice.name(guess),
    }
    for aim, name in aims.items():
        for etag in ("", target.etag):
            request = request_for(method, name=name, parent=alice.parent, etag=etag)
            if method.name in ("CreateAlert", "ListAlerts") and aim != "her name":
                continue  # collection methods are aimed at the parent, which is hers
            await expect(grpc.StatusCode.NOT_FOUND, _call(bob.client, method, request))
    real = await expect(
        grpc.StatusCode.NOT_FOUND,
        _call(bob.client, method, request_for(method, name=aims["her name"], parent=alice.parent)),
    )
    made_up = await expect(
        grpc.StatusCode.NOT_FOUND,
        _call(
            bob.client,
            method,
            request_for(method, name=aims["a guessed id under her name"], parent=alice.parent),
        ),
    )
    # Her real alert and a made-up one are refused alike: nothing is revealed.
    assert real.message.replace(target_id, "ID") == made_up.message.replace(guess, "ID")
    assert await alice.list_all() == alice_before
    assert await bob.list_all() == [mine]
    # The same request from Alice for her own alert goes through: the refusals were ownership.
    await _call(alice.client, method, request_for(method, name=target.name, parent="users/me"))


@pytest.mark.parametrize("method", METHODS, ids=lambda m: str(m.name))
async def test_calls_without_a_users_token_are_unauthenticated(
    stack: Stack, method: MethodDescriptor
) -> None:
    owner: Account = await stack.account()
    target = (await owner.create()).alert
    anonymous = OptixClient(stack.running.address)
    stack.clients.append(anonymous)
    request = request_for(method, name=target.name, parent=owner.parent, etag=target.etag)
    await expect(grpc.StatusCode.UNAUTHENTICATED, _call(anonymous, method, request))
    assert await owner.list_all() == [target]


async def test_a_stream_never_carries_another_users_events(stack: Stack) -> None:
    alice = await stack.account()
    bob = await stack.account()
    request = alert_service_pb2.StreamAlertEventsRequest(
        parent="users/me/alerts/-", after_event_id=0, heartbeat_interval=Duration(seconds=1)
    )
    watching = bob.alerts.StreamAlertEvents(request)
    quote = await alice.client.marketdata.GetQuote(
        marketdata_service_pb2.GetQuoteRequest(symbol="AAPL")
    )
    fires = await alice.create("AAPL", price_above(quote.quote.last * 0.5))
    # Alice's event exists (her own stream sees it) while Bob's stream carries only heartbeats.
    mine = alice.alerts.StreamAlertEvents(request)
    async with asyncio.timeout(30):
        async for message in mine:
            if message.WhichOneof("payload") == "events":
                assert [e.alert for e in message.events.events] == [fires.alert.name]
                break
    mine.cancel()
    heartbeats = 0
    async with asyncio.timeout(30):
        async for message in watching:
            assert message.WhichOneof("payload") == "heartbeat", message
            heartbeats += 1
            if heartbeats == 2:
                break
    watching.cancel()
    assert await bob.events() == []
