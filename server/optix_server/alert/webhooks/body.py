"""The webhook request body: the proto3 JSON form of the event's AlertEvent message.

Options, kept stable because receivers parse them: lowerCamelCase field names (the proto JSON
names, e.g. `eventId`, `fireTime`), enum values by name, int64 values as strings
(`"eventId": "42"`), timestamps in RFC 3339 UTC, fields at their default value omitted, one line
(`json.dumps` separators `", "` and `": "`), UTF-8 without escaping non-ASCII, fields in field
number order. `webhookDelivery` is always WEBHOOK_DELIVERY_STATE_PENDING: the body is the same
bytes on every attempt."""

from __future__ import annotations

import dataclasses

from google.protobuf import json_format

from optix_server.alert.convert import event_to_proto
from optix_server.alert.domain import AlertEvent, DeliveryState

CONTENT_TYPE = "application/json"


def event_body(event: AlertEvent) -> bytes:
    """The bytes POSTed for `event` (and signed)."""
    message = event_to_proto(dataclasses.replace(event, webhook_delivery=DeliveryState.PENDING))
    text = json_format.MessageToJson(message, indent=None, ensure_ascii=False)
    return text.encode("utf-8")
