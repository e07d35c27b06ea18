"""Webhook delivery of alert events: the outbox in the database, a signer, and the sender that
claims due rows with a lease, POSTs them over pinned HTTPS and records every attempt.

Contract (proto/optix/alert/v1/alert.proto, AlertDelivery): the body is the proto3 JSON form of
the AlertEvent (see `body.py` for the exact options), with headers `Optix-Event-Id` and
`Optix-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`; a 2xx
acknowledges; anything else is retried with exponential backoff until the row's give-up time.
"""

from __future__ import annotations

from optix_server.alert.webhooks.body import event_body
from optix_server.alert.webhooks.delivery import AttemptRecord
from optix_server.alert.webhooks.outbox import WebhookOutbox
from optix_server.alert.webhooks.retry import RetryPolicy
from optix_server.alert.webhooks.sender import WebhookSender
from optix_server.alert.webhooks.signing import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    signature_header,
    verify_signature,
)

__all__ = [
    "EVENT_ID_HEADER",
    "SIGNATURE_HEADER",
    "AttemptRecord",
    "RetryPolicy",
    "WebhookOutbox",
    "WebhookSender",
    "event_body",
    "signature_header",
    "verify_signature",
]
