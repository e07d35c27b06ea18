"""The values the sender works with: a claimed outbox row, what an attempt got back, and the
delivery's state after it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from optix_server.alert.domain import AlertEvent, DeliveryState


@dataclass(frozen=True)
class Delivery:
    """A claimed outbox row: the event to send, where to, and the secrets that may sign it."""

    user_id: str
    event_id: int
    alert_id: str
    url: str
    # The secret when the event fired, sealed with the context f"{user_id}/{alert_id}".
    sealed_snapshot_secret: str
    # The alert's current sealed secret; None when the alert is gone or has no URL of its own.
    sealed_alert_secret: str | None
    # Attempts made before this one.
    attempts: int
    give_up_time: datetime
    # None when the event row is gone (the delivery then fails: there is nothing to send).
    event: AlertEvent | None


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt got back: an HTTP status, or why there was none."""

    status: int | None
    error: str | None
    duration: timedelta = timedelta(0)
    # True when trying again cannot help: a refused address, a secret that cannot be opened.
    permanent: bool = False

    @property
    def acknowledged(self) -> bool:
        """A 2xx answer: the receiver has the event."""
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True)
class Outcome:
    """The delivery's state after an attempt, and when the next is due while it is pending."""

    state: DeliveryState
    next_attempt_time: datetime | None = None


@dataclass(frozen=True)
class AttemptRecord:
    """One recorded attempt, as the attempts log keeps it (no secret, no signature)."""

    user_id: str
    event_id: int
    attempt: int
    attempt_time: datetime
    status: int | None
    error: str | None
    # The delivery's state once this attempt was recorded.
    state: DeliveryState
    next_attempt_time: datetime | None
