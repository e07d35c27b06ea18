"""The user's default webhook (NotificationPreferences.webhook_url): alerts without a URL of
their own deliver there, signed with the secret UpdateMe returned; app-only alerts and alerts
with their own URL do not; and when the user service cannot answer, the firing is still
recorded. End to end over a real server and a local HTTPS receiver, then the cache in detail."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
import trustme
from google.protobuf import field_mask_pb2

from optix.alert.v1 import alert_event_pb2, alert_pb2
from optix.user.v1 import user_pb2, user_service_pb2
from optix_server.alert.conditions import AlertState, Condition, ConditionKind, Frequency
from optix_server.alert.config import AlertSettings, WebhookSettings
from optix_server.alert.domain import Alert, DeliveryState
from optix_server.alert.user_webhooks import DefaultWebhook, UserWebhooks, UserWebhookSettings
from optix_server.alert.webhooks.delivery import AttemptRecord
from optix_server.alert.webhooks.sender import WebhookSender
from optix_server.alert.webhooks.signing import verify_signature
from optix_server.infra.crypto import SecretBox
from tests.alert.harness import Account, Stack, alert_stack, price_above
from tests.alert.test_firing import WAIT, collect, last_price
from tests.support.webhook_receiver import ReceivedRequest, Reply, WebhookReceiver

pytestmark = pytest.mark.asyncio(loop_scope="package")

DELIVERED = alert_event_pb2.WEBHOOK_DELIVERY_STATE_DELIVERED
NOT_CONFIGURED = alert_event_pb2.WEBHOOK_DELIVERY_STATE_NOT_CONFIGURED


@dataclass
class Hooks:
    """A server whose alerts may deliver to a loopback receiver trusted through its own CA."""

    stack: Stack
    receiver: WebhookReceiver
    # Requests by URL path, and an event set when one arrives there.
    arrived: dict[str, asyncio.Event] = field(default_factory=dict)
    delivered: dict[tuple[str, int], asyncio.Event] = field(default_factory=dict)

    def path(self) -> str:
        """A fresh receiver path (one per destination, so tests never see each other's)."""
        path = f"/hooks/{uuid.uuid4().hex}"
        self.arrived[path] = asyncio.Event()
        return path

    def requests(self, path: str) -> list[ReceivedRequest]:
        """What arrived at `path`."""
        return [r for r in self.receiver.requests if r.target == path]

    async def until_arrived(self, path: str) -> ReceivedRequest:
        """The first request at `path`, once it arrived."""
        async with asyncio.timeout(WAIT):
            await self.arrived[path].wait()
        return self.requests(path)[0]

    async def until_delivered(self, user_id: str, event_id: int) -> None:
        """Wait until the sender recorded the event's delivery as acknowledged."""
        event = self.delivered.setdefault((user_id, event_id), asyncio.Event())
        async with asyncio.timeout(WAIT):
            await event.wait()

    def on_attempt(self, record: AttemptRecord) -> None:
        """Sender listener: note acknowledged deliveries."""
        if record.state is DeliveryState.DELIVERED:
            self.delivered.setdefault((record.user_id, record.event_id), asyncio.Event()).set()


def module_of(stack: Stack, name: str) -> Any:
    """A hosted slice's module."""
    return next(m for m in stack.running.server.modules if m.name == name)


def receiver_settings(bundle: Path) -> AlertSettings:
    """Alert settings that admit the loopback receiver and trust its CA."""
    return AlertSettings(
        allow_private_webhooks=True, webhook=WebhookSettings(ca_bundle=str(bundle))
    )


@pytest_asyncio.fixture(scope="module", loop_scope="package")
async def hooks(db_kind: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Hooks]:
    """One server and receiver per database for this module."""
    tmp = tmp_path_factory.mktemp(f"default-hooks-{db_kind}")
    ca = trustme.CA()
    bundle = tmp / "receiver-ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    holder: list[Hooks] = []

    async def answer(request: ReceivedRequest) -> Reply:
        event = holder[0].arrived.get(request.target) if holder else None
        if event is not None:
            event.set()
        return Reply(204)

    receiver = WebhookReceiver(ca, responder=answer)
    await receiver.start()
    try:
        async with alert_stack(db_kind, tmp, settings=receiver_settings(bundle)) as stack:
            hooks = Hooks(stack, receiver)
            holder.append(hooks)
            sender = module_of(stack, "alert").extra["webhook_sender"]
            assert isinstance(sender, WebhookSender)
            sender.listen(hooks.on_attempt)
            yield hooks
    finally:
        await receiver.close()


@pytest_asyncio.fixture(loop_scope="package")
async def account(hooks: Hooks) -> AsyncIterator[Account]:
    """A fresh user on the module's server (their client is closed after the test)."""
    scoped = hooks.stack.fork()
    try:
        yield await scoped.account()
    finally:
        await scoped.close()


async def set_default(account: Account, url: str, *, rotate: bool = False) -> str:
    """Set the user's default webhook URL; the signing secret UpdateMe returned ("" if none)."""
    reply = await account.client.user.UpdateMe(
        user_service_pb2.UpdateMeRequest(
            user=user_pb2.User(
                notification_preferences=user_pb2.NotificationPreferences(webhook_url=url)
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["notification_preferences.webhook_url"]),
            rotate_webhook_signing_secret=rotate,
        )
    )
    return reply.webhook_signing_secret


async def fire_now(account: Account, **fields: Any) -> alert_event_pb2.AlertEvent:
    """Create an alert that holds on the next tick; its (first) event."""
    symbol = "MSFT"
    price = await last_price(account, symbol)
    before = [e.event_id for e in await account.events()]
    created = await account.create(symbol, price_above(price * 0.5), **fields)
    after = max(before, default=0)
    events = [e for e, _ in await collect(account, 1, after=after)]
    assert events[0].alert == created.alert.name
    return events[0]


async def stored_event(account: Account, event_id: int) -> alert_event_pb2.AlertEvent:
    """The event as ListAlertEvents has it now."""
    return next(e for e in await account.events() if e.event_id == event_id)


async def test_an_alert_without_its_own_url_is_delivered_to_the_users_default_signed(
    hooks: Hooks, account: Account
) -> None:
    path = hooks.path()
    secret = await set_default(account, hooks.receiver.url(path))
    assert secret.startswith("whsec_")
    event = await fire_now(account, frequency=alert_pb2.ALERT_FREQUENCY_ONCE)
    request = await hooks.until_arrived(path)
    assert request.event_id == str(event.event_id)
    assert verify_signature(secret, request.headers["optix-signature"], request.body)
    assert secret not in request.body.decode()
    await hooks.until_delivered(account.user_id, event.event_id)
    assert (await stored_event(account, event.event_id)).webhook_delivery == DELIVERED


async def test_an_app_only_alert_gets_no_delivery_to_the_default(
    hooks: Hooks, account: Account
) -> None:
    path = hooks.path()
    await set_default(account, hooks.receiver.url(path))
    quiet = await fire_now(account, delivery=alert_pb2.AlertDelivery(webhook_disabled=True))
    # No outbox row was written with the event: nothing will ever be sent for it.
    assert quiet.webhook_delivery == NOT_CONFIGURED
    # A later alert of the same user is delivered there, and only it: the barrier that shows
    # the first one was not merely slower.
    loud = await fire_now(account)
    await hooks.until_arrived(path)
    await hooks.until_delivered(account.user_id, loud.event_id)
    assert [r.event_id for r in hooks.requests(path)] == [str(loud.event_id)]


async def test_an_alert_with_its_own_url_uses_its_own_url_and_secret(
    hooks: Hooks, account: Account
) -> None:
    default_path, own_path = hooks.path(), hooks.path()
    default_secret = await set_default(account, hooks.receiver.url(default_path))
    symbol = "MSFT"
    price = await last_price(account, symbol)
    created = await account.create(
        symbol,
        price_above(price * 0.5),
        delivery=alert_pb2.AlertDelivery(webhook_url=hooks.receiver.url(own_path)),
    )
    own_secret = created.webhook_signing_secret
    assert own_secret and own_secret != default_secret
    [(event, _)] = await collect(account, 1, after=0)
    request = await hooks.until_arrived(own_path)
    assert request.event_id == str(event.event_id)
    assert verify_signature(own_secret, request.headers["optix-signature"], request.body)
    assert not verify_signature(default_secret, request.headers["optix-signature"], request.body)
    await hooks.until_delivered(account.user_id, event.event_id)
    # The default receiver got nothing: this user's only delivery went to the alert's URL.
    assert hooks.requests(default_path) == []


async def test_a_rotated_default_secret_signs_the_next_firing(
    hooks: Hooks, account: Account
) -> None:
    path = hooks.path()
    await set_default(account, hooks.receiver.url(path))
    rotated = await set_default(account, hooks.receiver.url(path), rotate=True)
    assert rotated
    # The monitor may hold the user's previous answer for its TTL: ask afresh.
    user_webhooks = module_of(hooks.stack, "alert").extra["user_webhooks"]
    assert isinstance(user_webhooks, UserWebhooks)
    user_webhooks.forget(account.user_id)
    event = await fire_now(account)
    request = await hooks.until_arrived(path)
    assert request.event_id == str(event.event_id)
    assert verify_signature(rotated, request.headers["optix-signature"], request.body)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_an_unreachable_user_service_still_records_the_event(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(bundle))
    # The alert slice reaches "user" at a dead address; the test's own client still registers
    # and signs in on this server, which hosts the user service too.
    async with alert_stack(
        "sqlite",
        tmp_path,
        settings=receiver_settings(bundle),
        service_addresses={"user": f"127.0.0.1:{closed_port()}"},
    ) as stack:
        owner = await stack.account()
        await set_default(owner, "https://localhost:9/hooks/never")
        event = await fire_now(owner)
        # Written and streamed as always, without a delivery.
        assert event.webhook_delivery == NOT_CONFIGURED
        assert (await stored_event(owner, event.event_id)).webhook_delivery == NOT_CONFIGURED
        user_webhooks = module_of(stack, "alert").extra["user_webhooks"]
        assert isinstance(user_webhooks, UserWebhooks)
        assert user_webhooks.failures >= 1


# --- the cache, against a stand-in user service -------------------------------------------


class FakeUserService:
    """GetUserWebhook answers a test controls; each call waits until the test lets it go."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[str, str]] = {}
        self.down = False
        self.calls = 0
        self.called = asyncio.Event()
        self.gate = asyncio.Event()
        self.gate.set()

    async def GetUserWebhook(
        self, request: user_service_pb2.GetUserWebhookRequest, **options: Any
    ) -> user_service_pb2.GetUserWebhookResponse:
        """The stand-in RPC."""
        self.calls += 1
        self.called.set()
        await self.gate.wait()
        if self.down:
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata()
            )
        user_id = request.name.removeprefix("users/")
        if user_id == "gone":
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.NOT_FOUND, grpc.aio.Metadata(), grpc.aio.Metadata()
            )
        url, secret = self.answers.get(user_id, ("", ""))
        return user_service_pb2.GetUserWebhookResponse(
            webhook_url=url, webhook_signing_secret=secret
        )


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cache(
    service: FakeUserService, ticks: Ticks, **settings: Any
) -> tuple[UserWebhooks, SecretBox]:
    """A UserWebhooks over the stand-in, with a fresh key."""
    box = SecretBox(b"k" * 32)
    stub: Callable[[], Any] = lambda: service  # noqa: E731
    return UserWebhooks(stub, box, UserWebhookSettings(**settings), monotonic=ticks), box


async def test_answers_are_cached_per_user_for_the_ttl_then_asked_again() -> None:
    service, ticks = FakeUserService(), Ticks()
    service.answers["u1"] = ("https://a.example.com/h", "whsec_one")
    webhooks, _ = cache(service, ticks)
    assert await webhooks.default("u1") == DefaultWebhook("https://a.example.com/h", "whsec_one")
    service.answers["u1"] = ("https://b.example.com/h", "whsec_two")
    assert (await webhooks.default("u1") or DefaultWebhook("", "")).secret == "whsec_one"
    assert service.calls == 1
    ticks.now += UserWebhookSettings().ttl.total_seconds()
    assert await webhooks.default("u1") == DefaultWebhook("https://b.example.com/h", "whsec_two")
    assert service.calls == 2
    # forget(): the next read asks at once.
    service.answers["u1"] = ("", "")
    webhooks.forget("u1")
    assert await webhooks.default("u1") is None
    # A user who no longer exists has no webhook.
    assert await webhooks.default("gone") is None


async def test_past_half_the_ttl_a_read_uses_the_answer_and_refreshes_it_behind() -> None:
    service, ticks = FakeUserService(), Ticks()
    service.answers["u1"] = ("https://a.example.com/h", "whsec_one")
    webhooks, _ = cache(service, ticks)
    first = await webhooks.default("u1")
    service.answers["u1"] = ("https://b.example.com/h", "whsec_two")
    ticks.now += UserWebhookSettings().ttl.total_seconds() / 2
    # The user service hangs: the read does not wait for it.
    service.gate.clear()
    service.called.clear()
    assert await webhooks.default("u1") == first
    assert await webhooks.default("u1") == first
    async with asyncio.timeout(WAIT):
        await service.called.wait()
    assert service.calls == 2  # one refresh for both reads
    lookup = webhooks._lookups["u1"]
    service.gate.set()
    await lookup
    assert await webhooks.default("u1") == DefaultWebhook("https://b.example.com/h", "whsec_two")
    assert service.calls == 2


async def test_concurrent_firings_of_one_user_share_one_lookup() -> None:
    service, ticks = FakeUserService(), Ticks()
    service.answers["u1"] = ("https://a.example.com/h", "whsec_one")
    service.gate.clear()
    webhooks, _ = cache(service, ticks)
    waiting = [asyncio.ensure_future(webhooks.default("u1")) for _ in range(20)]
    async with asyncio.timeout(WAIT):
        await service.called.wait()
    service.gate.set()
    results = await asyncio.gather(*waiting)
    assert service.calls == 1 and len(set(results)) == 1


async def test_an_outage_uses_the_last_answer_while_it_is_recent_else_none() -> None:
    service, ticks = FakeUserService(), Ticks()
    service.answers["u1"] = ("https://a.example.com/h", "whsec_one")
    settings = UserWebhookSettings()
    webhooks, _ = cache(service, ticks)
    known = await webhooks.default("u1")
    service.down = True
    ticks.now += settings.ttl.total_seconds()
    assert await webhooks.default("u1") == known  # stale, but recent: still used
    # Within retry_after the service is not asked again.
    calls = service.calls
    assert await webhooks.default("u1") == known
    assert service.calls == calls
    # Nor for anyone else: a user never answered for gets none without a wait.
    assert await webhooks.default("u2") is None
    assert service.calls == calls
    ticks.now += settings.stale_for.total_seconds()
    assert await webhooks.default("u1") is None  # asked, failed, and too old to trust
    assert webhooks.failures == 2
    service.down = False
    ticks.now += settings.retry_after.total_seconds()
    assert await webhooks.default("u1") == known


async def test_the_cache_is_bounded() -> None:
    service, ticks = FakeUserService(), Ticks()
    webhooks, _ = cache(service, ticks, max_users=3)
    for user in ("a", "b", "c", "d"):
        await webhooks.default(user)
    calls = service.calls
    await webhooks.default("a")  # evicted (least recently used): asked again
    assert service.calls == calls + 1
    await webhooks.default("d")  # still held
    assert service.calls == calls + 1


async def test_the_secret_is_sealed_for_the_alert_and_own_urls_and_app_only_win() -> None:
    service, ticks = FakeUserService(), Ticks()
    service.answers["u1"] = ("https://a.example.com/h", "whsec_one")
    webhooks, box = cache(service, ticks)
    alert = _alert(user_id="u1", alert_id="a1")
    target = await webhooks.webhook_for(alert)
    assert target is not None and target[0] == "https://a.example.com/h"
    assert "whsec_one" not in target[1]
    assert box.open(target[1], "u1/a1") == "whsec_one"
    assert box.open(target[1], "u1/a2") is None
    assert await webhooks.webhook_for(_alert(user_id="u1", webhook_disabled=True)) is None
    own = _alert(user_id="u1", webhook_url="https://own.example.com/h", sealed="v1:own")
    assert await webhooks.webhook_for(own) == ("https://own.example.com/h", "v1:own")
    calls = service.calls
    await webhooks.webhook_for(own)
    assert service.calls == calls  # an alert with its own URL never asks the user service


def _alert(
    *,
    user_id: str,
    alert_id: str = "a1",
    webhook_url: str = "",
    webhook_disabled: bool = False,
    sealed: str | None = None,
) -> Alert:
    """An Alert with only the delivery fields that matter here."""
    now = datetime(2030, 1, 1, tzinfo=UTC)
    return Alert(
        id=alert_id,
        user_id=user_id,
        display_name="x",
        symbol="AAPL",
        condition=Condition(ConditionKind.PRICE_ABOVE, 1.0),
        frequency=Frequency.ONCE,
        cooldown=timedelta(0),
        expire_time=None,
        state=AlertState.ACTIVE,
        webhook_url=webhook_url,
        webhook_disabled=webhook_disabled,
        sealed_webhook_secret=sealed,
        webhook_secret_create_time=now if sealed else None,
        note="",
        last_fire_time=None,
        fire_count=0,
        revision=1,
        create_time=now,
        update_time=now,
    )
