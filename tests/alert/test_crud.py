"""AlertService CRUD and state changes through the SDK against a real server (SQLite and
PostgreSQL): defaults, derived labels, paging and filters, masks, etags, request ids, limits,
webhook signing secrets shown once."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.protobuf.duration_pb2 import Duration

from optix.alert.v1 import alert_pb2, alert_service_pb2
from optix.common.v1 import instrument_pb2
from optix_server.alert.config import AlertSettings
from tests.alert.harness import Account, Stack, alert_stack, price_above
from tests.support.sdk_errors import expect, invalid

pytestmark = pytest.mark.asyncio(loop_scope="package")

PUBLIC_HOOK = "https://93.184.216.34/hooks/optix"
SECRET = re.compile(r"whsec_[A-Za-z0-9_-]{43}")


def _update(
    alert: alert_pb2.Alert, *paths: str, rotate: bool = False
) -> alert_service_pb2.UpdateAlertRequest:
    return alert_service_pb2.UpdateAlertRequest(
        alert=alert,
        update_mask=field_mask_pb2.FieldMask(paths=list(paths)),
        rotate_webhook_signing_secret=rotate,
    )


async def test_create_fills_defaults_and_output_fields(stack: Stack) -> None:
    owner = await stack.account()
    reply = await owner.create(" aapl ", price_above(1_000_000))
    alert = reply.alert
    assert alert.name.startswith(f"users/{owner.user_id}/alerts/")
    assert alert.symbol == "AAPL" and alert.display_name == "AAPL above 1,000,000.00"
    assert alert.instrument.type == instrument_pb2.INSTRUMENT_TYPE_EQUITY
    assert alert.state == alert_pb2.ALERT_STATE_ACTIVE
    assert alert.frequency == alert_pb2.ALERT_FREQUENCY_ONCE
    # The default price type is resolved and shown: the last trade for an equity.
    assert alert.condition.price_above.price_type == alert_pb2.PRICE_TYPE_LAST
    assert alert.fire_count == 0 and not alert.HasField("last_fire_time")
    assert alert.etag and alert.create_time == alert.update_time
    assert not reply.webhook_signing_secret
    assert not alert.delivery.HasField("webhook_signing_secret_create_time")
    got = await owner.alerts.GetAlert(alert_service_pb2.GetAlertRequest(name=alert.name))
    assert got.alert == alert
    me = await owner.alerts.GetAlert(
        alert_service_pb2.GetAlertRequest(name=alert.name.replace(owner.user_id, "me", 1))
    )
    assert me.alert == alert


async def test_option_alerts_default_to_the_mark_and_take_iv_and_delta(stack: Stack) -> None:
    owner = await stack.account()
    occ = await stack.option_symbol(owner)
    delta = await owner.create(
        occ,
        alert_pb2.AlertCondition(
            delta_crossing=alert_pb2.DeltaCrossing(
                delta=-0.5, direction=alert_pb2.MOVE_DIRECTION_UP
            )
        ),
    )
    assert delta.alert.instrument.type == instrument_pb2.INSTRUMENT_TYPE_OPTION
    assert delta.alert.instrument.option.underlying == "AAPL"
    iv = await owner.create(
        occ.lower(),
        alert_pb2.AlertCondition(
            implied_volatility_above=alert_pb2.ImpliedVolatilityThreshold(implied_volatility=0.6)
        ),
    )
    assert iv.alert.symbol == occ and "IV above 60%" in iv.alert.display_name
    premium = await owner.create(occ, price_above(5000))
    assert premium.alert.condition.price_above.price_type == alert_pb2.PRICE_TYPE_MARK


async def test_every_time_keeps_its_cooldown_and_others_ignore_it(stack: Stack) -> None:
    owner = await stack.account()
    every = await owner.create(
        frequency=alert_pb2.ALERT_FREQUENCY_EVERY_TIME, cooldown=Duration(seconds=120)
    )
    assert every.alert.cooldown.seconds == 120
    defaulted = await owner.create(frequency=alert_pb2.ALERT_FREQUENCY_EVERY_TIME)
    assert defaulted.alert.cooldown.seconds == 300
    once = await owner.create(cooldown=Duration(seconds=5))  # ignored: not EVERY_TIME
    assert not once.alert.HasField("cooldown")


async def test_list_is_newest_first_with_filters_and_pages(stack: Stack) -> None:
    owner = await stack.account()
    created = [(await owner.create(symbol)).alert for symbol in ["AAPL", "MSFT"] * 4]
    everything = await owner.list_all()
    assert [a.name for a in everything] == [a.name for a in reversed(created)]
    msft = await owner.list_all(symbol=" msft ")
    assert [a.symbol for a in msft] == ["MSFT"] * 4
    disabled = await owner.alerts.DisableAlert(
        alert_service_pb2.DisableAlertRequest(name=created[0].name)
    )
    assert disabled.alert.state == alert_pb2.ALERT_STATE_DISABLED
    only_disabled = await owner.list_all(states=[alert_pb2.ALERT_STATE_DISABLED])
    assert [a.name for a in only_disabled] == [created[0].name]
    pages, token, seen = 0, "", list[str]()
    while True:
        reply = await owner.alerts.ListAlerts(
            alert_service_pb2.ListAlertsRequest(parent="users/me", page_size=3, page_token=token)
        )
        pages += 1
        seen.extend(a.name for a in reply.alerts)
        token = reply.next_page_token
        if not token:
            break
        # A token is bound to its request's other fields.
        await invalid(
            owner.alerts.ListAlerts(
                alert_service_pb2.ListAlertsRequest(
                    parent="users/me", page_size=3, page_token=token, symbol="AAPL"
                )
            ),
            "page_token",
        )
    assert pages == 3 and seen == [a.name for a in everything]
    await invalid(
        owner.alerts.ListAlerts(
            alert_service_pb2.ListAlertsRequest(
                parent="users/me", states=[alert_pb2.ALERT_STATE_UNSPECIFIED]
            )
        ),
        "states[0]",
    )


async def test_update_follows_the_mask_and_keeps_the_state(stack: Stack) -> None:
    owner = await stack.account()
    alert = (await owner.create()).alert
    await owner.alerts.DisableAlert(alert_service_pb2.DisableAlertRequest(name=alert.name))
    changed = alert_pb2.Alert(
        name=alert.name,
        condition=alert_pb2.AlertCondition(
            price_crossing=alert_pb2.PriceCrossing(
                price=200, direction=alert_pb2.MOVE_DIRECTION_DOWN
            )
        ),
        note="trim the position",
        display_name="ignored: not in the mask",
    )
    reply = await owner.alerts.UpdateAlert(_update(changed, "condition", "note"))
    updated = reply.alert
    assert updated.condition.WhichOneof("kind") == "price_crossing"
    assert updated.note == "trim the position"
    # A derived label follows the condition it describes; the state is untouched.
    assert updated.display_name == "AAPL crosses 200.00 down"
    assert updated.state == alert_pb2.ALERT_STATE_DISABLED
    assert (
        updated.etag != alert.etag
        and updated.update_time.ToDatetime() > alert.create_time.ToDatetime()
    )
    named = await owner.alerts.UpdateAlert(
        _update(alert_pb2.Alert(name=alert.name, display_name="  Exit  "), "display_name")
    )
    assert named.alert.display_name == "Exit"
    for path in ("symbol", "state", "name", "fire_count", "nonsense"):
        await invalid(owner.alerts.UpdateAlert(_update(changed, path)), "update_mask.paths")
    await invalid(owner.alerts.UpdateAlert(_update(changed)), "update_mask")


async def test_a_stale_etag_is_aborted_on_every_change(stack: Stack) -> None:
    owner = await stack.account()
    alert = (await owner.create()).alert
    fresh = (
        await owner.alerts.UpdateAlert(_update(alert_pb2.Alert(name=alert.name, note="v2"), "note"))
    ).alert
    stale = alert.etag
    aborted = grpc.StatusCode.ABORTED
    await expect(
        aborted,
        owner.alerts.UpdateAlert(
            _update(alert_pb2.Alert(name=alert.name, note="v3", etag=stale), "note")
        ),
    )
    await expect(
        aborted,
        owner.alerts.DisableAlert(
            alert_service_pb2.DisableAlertRequest(name=alert.name, etag=stale)
        ),
    )
    await expect(
        aborted,
        owner.alerts.EnableAlert(alert_service_pb2.EnableAlertRequest(name=alert.name, etag=stale)),
    )
    await expect(
        aborted,
        owner.alerts.DeleteAlert(alert_service_pb2.DeleteAlertRequest(name=alert.name, etag=stale)),
    )
    # Nothing was written by the refused changes; the current etag works.
    got = (await owner.alerts.GetAlert(alert_service_pb2.GetAlertRequest(name=alert.name))).alert
    assert got == fresh
    await owner.alerts.DeleteAlert(
        alert_service_pb2.DeleteAlertRequest(name=alert.name, etag=fresh.etag)
    )
    await expect(
        grpc.StatusCode.NOT_FOUND,
        owner.alerts.GetAlert(alert_service_pb2.GetAlertRequest(name=alert.name)),
    )


async def test_enable_and_disable_are_idempotent(stack: Stack) -> None:
    owner = await stack.account()
    alert = (await owner.create()).alert
    enabled = await owner.alerts.EnableAlert(alert_service_pb2.EnableAlertRequest(name=alert.name))
    assert enabled.alert == alert  # already active: a no-op, same etag
    first = await owner.alerts.DisableAlert(alert_service_pb2.DisableAlertRequest(name=alert.name))
    again = await owner.alerts.DisableAlert(alert_service_pb2.DisableAlertRequest(name=alert.name))
    assert first.alert == again.alert and first.alert.etag != alert.etag
    back = await owner.alerts.EnableAlert(
        alert_service_pb2.EnableAlertRequest(name=alert.name, etag=first.alert.etag)
    )
    assert back.alert.state == alert_pb2.ALERT_STATE_ACTIVE


async def test_request_id_makes_create_idempotent_without_showing_the_secret_again(
    stack: Stack,
) -> None:
    owner = await stack.account()
    request_id = str(uuid.uuid4())
    delivery = alert_pb2.AlertDelivery(webhook_url=PUBLIC_HOOK)
    first = await owner.create(request_id=request_id, delivery=delivery)
    again = await owner.create(request_id=request_id, delivery=delivery)
    assert SECRET.fullmatch(first.webhook_signing_secret)
    assert again.alert == first.alert and not again.webhook_signing_secret
    assert len(await owner.list_all()) == 1
    # Request ids are per user.
    other = await stack.account()
    theirs = await other.create(request_id=request_id)
    assert theirs.alert.name != first.alert.name


async def test_webhook_secrets_are_shown_once_and_rotate(stack: Stack) -> None:
    owner = await stack.account()
    plain = (await owner.create()).alert
    # A first URL of its own makes a secret, returned by that update only.
    given = await owner.alerts.UpdateAlert(
        _update(
            alert_pb2.Alert(
                name=plain.name, delivery=alert_pb2.AlertDelivery(webhook_url=PUBLIC_HOOK)
            ),
            "delivery.webhook_url",
        )
    )
    secret = given.webhook_signing_secret
    assert SECRET.fullmatch(secret)
    assert given.alert.delivery.HasField("webhook_signing_secret_create_time")
    read = (await owner.alerts.GetAlert(alert_service_pb2.GetAlertRequest(name=plain.name))).alert
    assert secret not in str(read) and secret not in read.SerializeToString().decode("latin-1")
    note_only = await owner.alerts.UpdateAlert(
        _update(alert_pb2.Alert(name=plain.name, note="x"), "note")
    )
    assert not note_only.webhook_signing_secret
    rotated = await owner.alerts.UpdateAlert(
        _update(alert_pb2.Alert(name=plain.name, note="y"), "note", rotate=True)
    )
    assert SECRET.fullmatch(rotated.webhook_signing_secret)
    assert rotated.webhook_signing_secret != secret
    # Clearing the URL drops the secret; rotating without a URL is refused.
    cleared = await owner.alerts.UpdateAlert(_update(alert_pb2.Alert(name=plain.name), "delivery"))
    assert not cleared.alert.delivery.webhook_url
    assert not cleared.alert.delivery.HasField("webhook_signing_secret_create_time")
    await expect(
        grpc.StatusCode.FAILED_PRECONDITION,
        owner.alerts.UpdateAlert(_update(alert_pb2.Alert(name=plain.name), "note", rotate=True)),
    )


async def _fill(owner: Account, count: int) -> list[alert_pb2.Alert]:
    return [(await owner.create()).alert for _ in range(count)]


async def test_the_armed_alert_limit(tmp_path: Path) -> None:
    async with alert_stack(
        "sqlite", tmp_path, settings=AlertSettings(max_alerts_per_user=3)
    ) as stack:
        owner = await stack.account()
        alerts = await _fill(owner, 3)
        exhausted = await expect(grpc.StatusCode.RESOURCE_EXHAUSTED, owner.create())
        assert "3" in exhausted.message
        # Disabled alerts count; deleting one frees a place.
        await owner.alerts.DisableAlert(alert_service_pb2.DisableAlertRequest(name=alerts[0].name))
        await expect(grpc.StatusCode.RESOURCE_EXHAUSTED, owner.create())
        await owner.alerts.DeleteAlert(alert_service_pb2.DeleteAlertRequest(name=alerts[0].name))
        await owner.create()
        assert len(await owner.list_all()) == 3
        # Another user has a limit of their own.
        other = await stack.account()
        await _fill(other, 3)
