"""The webhook signature and body, without a database or network: the header format, what
verification accepts and rejects, the JSON options of the body, the transport's refusal of a
non-verifying TLS context, and the sender's settings."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import ssl
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf import json_format

from optix.alert.v1 import alert_event_pb2
from optix_server.alert.conditions import AlertState, Condition, ConditionKind
from optix_server.alert.config import AlertSettings, WebhookSettings
from optix_server.alert.domain import AlertEvent, DeliveryState
from optix_server.alert.webhooks import event_body, signature_header, verify_signature
from optix_server.alert.webhooks.transport import PinnedClient
from optix_server.infra.env import SettingsError
from tests.support.webhook_receiver_example import verify_signature as example_verify

SECRET = "whsec_abc"
BODY = b'{"eventId": "7"}'
T = 1_900_000_000


def test_the_header_is_t_and_the_hex_hmac_of_t_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert signature_header(SECRET, BODY, T) == f"t={T},v1={expected}"


Verifier = Callable[..., bool]


@pytest.mark.parametrize("check", [verify_signature, example_verify], ids=["server", "readme"])
def test_verification_accepts_the_signed_body_only(check: Verifier) -> None:
    header = signature_header(SECRET, BODY, T)
    assert check(SECRET, header, BODY, 300, now=T + 299)
    assert check(SECRET, header, BODY, 300, now=T - 299)
    assert not check(SECRET, header, BODY, 300, now=T + 301)
    assert not check(SECRET, header, BODY + b" ", 300, now=T)
    assert not check("whsec_other", header, BODY, 300, now=T)
    assert not check(SECRET, header.replace(f"t={T}", f"t={T + 1}"), BODY, 300, now=T)
    for broken in ["", "t=", f"t={T}", "v1=00", "t=x,v1=00", f"t={T},t={T},v1=00", "garbage"]:
        assert not check(SECRET, broken, BODY, 300, now=T), broken


def test_verification_accepts_any_of_several_signatures_and_ignores_unknown_schemes() -> None:
    good = signature_header(SECRET, BODY, T).split(",")[1]
    assert verify_signature(SECRET, f"t={T},v1=00ff,{good},v2=zz", BODY, now=T)


def _event() -> AlertEvent:
    trigger = alert_event_pb2.AlertTriggerValues(observed_value=190.5)
    return AlertEvent(
        user_id="u1",
        event_id=9_007_199_254_740_993,  # beyond a double's exact integers
        alert_id="a1",
        alert_display_name="AAPL above 190.00",
        symbol="AAPL",
        condition=Condition(kind=ConditionKind.PRICE_ABOVE, level=190.0),
        fire_time=datetime(2030, 1, 2, 15, 30, 0, 250000, tzinfo=UTC),
        trigger_values=trigger.SerializeToString(),
        message="AAPL rose above 190.00 — trim",
        alert_state=AlertState.ACTIVE,
        webhook_delivery=DeliveryState.DELIVERED,
    )


def test_the_body_is_one_line_of_proto3_json_with_stable_options() -> None:
    event = _event()
    body = event_body(event)
    text = body.decode("utf-8")

    assert "\n" not in text and "—" in text  # one line, UTF-8 as is
    value = json.loads(body)
    assert value["name"] == "users/u1/alerts/a1/events/9007199254740993"
    assert value["eventId"] == "9007199254740993"  # int64 as a string
    assert value["alertDisplayName"] == "AAPL above 190.00"  # lowerCamelCase names
    assert value["fireTime"] == "2030-01-02T15:30:00.250Z"
    assert value["alertState"] == "ALERT_STATE_ACTIVE"  # enums by name
    # The same bytes on every attempt, whatever the stored delivery state says.
    assert value["webhookDelivery"] == "WEBHOOK_DELIVERY_STATE_PENDING"
    pending = dataclasses.replace(event, webhook_delivery=DeliveryState.PENDING)
    assert event_body(pending) == body
    parsed = json_format.Parse(body, alert_event_pb2.AlertEvent())
    assert parsed.event_id == event.event_id
    assert parsed.trigger_values.observed_value == 190.5


def test_the_transport_refuses_a_context_that_does_not_verify() -> None:
    lax = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    lax.check_hostname = False
    lax.verify_mode = ssl.CERT_NONE
    with pytest.raises(ValueError, match="must verify"):
        PinnedClient(lax, 3.0)


def test_sender_settings_come_from_the_environment_with_sane_defaults() -> None:
    assert AlertSettings.from_env({}).webhook == WebhookSettings()
    assert WebhookSettings().timeout == timedelta(seconds=3)
    assert WebhookSettings().max_age == timedelta(hours=24)
    read = AlertSettings.from_env(
        {
            "OPTIX_ALERT_WEBHOOK_TIMEOUT_SECONDS": "10",
            "OPTIX_ALERT_WEBHOOK_BACKOFF_BASE_SECONDS": "2",
            "OPTIX_ALERT_WEBHOOK_BACKOFF_CAP_SECONDS": "600",
            "OPTIX_ALERT_WEBHOOK_MAX_AGE_HOURS": "48",
            "OPTIX_ALERT_WEBHOOK_POLL_INTERVAL_SECONDS": "0.5",
            "OPTIX_ALERT_WEBHOOK_CONCURRENCY": "4",
            "OPTIX_ALERT_WEBHOOK_CA_BUNDLE": "/etc/ssl/hooks.pem",
        }
    ).webhook
    assert read == WebhookSettings(
        timeout=timedelta(seconds=10),
        backoff_base=timedelta(seconds=2),
        backoff_cap=timedelta(minutes=10),
        max_age=timedelta(hours=48),
        poll_interval=timedelta(seconds=0.5),
        # Ten timeouts, since that is longer than the 60 s default.
        lease=timedelta(seconds=100),
        concurrency=4,
        ca_bundle="/etc/ssl/hooks.pem",
    )
    with pytest.raises(SettingsError, match="LEASE"):
        WebhookSettings.from_env(
            {"OPTIX_ALERT_WEBHOOK_TIMEOUT_SECONDS": "3", "OPTIX_ALERT_WEBHOOK_LEASE_SECONDS": "5"}
        )
