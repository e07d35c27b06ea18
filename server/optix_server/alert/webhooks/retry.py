"""When a failed delivery is tried again: exponential backoff with jitter, capped, until the
row's give-up time."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from optix_server.alert.config import WebhookSettings
from optix_server.alert.domain import DeliveryState
from optix_server.alert.webhooks.delivery import AttemptResult, Outcome

# 2**40 base intervals exceed any sensible cap; the bound keeps the float finite.
_MAX_EXPONENT = 40


@dataclass(frozen=True)
class RetryPolicy:
    """The n-th consecutive failure waits base * 2**(n-1), at most `cap`, shortened by up to
    `jitter` of itself (so delays still grow and replicas do not retry in lockstep)."""

    base: timedelta
    cap: timedelta
    jitter: float

    @classmethod
    def of(cls, settings: WebhookSettings) -> RetryPolicy:
        """The policy the settings describe."""
        return cls(settings.backoff_base, settings.backoff_cap, settings.jitter)

    def delay(self, failures: int, rng: random.Random) -> timedelta:
        """The wait after the `failures`-th failed attempt (1 for the first)."""
        exponent = min(max(failures - 1, 0), _MAX_EXPONENT)
        full = min(self.cap.total_seconds(), self.base.total_seconds() * 2.0**exponent)
        return timedelta(seconds=full * (1.0 - self.jitter * rng.random()))

    def outcome(
        self,
        result: AttemptResult,
        *,
        failures: int,
        now: datetime,
        give_up_time: datetime,
        rng: random.Random,
    ) -> Outcome:
        """The delivery's state after `result`, the `failures`-th failed attempt if it failed.
        The last retry is moved to the give-up time itself rather than skipped."""
        if result.acknowledged:
            return Outcome(DeliveryState.DELIVERED)
        if result.permanent or now >= give_up_time:
            return Outcome(DeliveryState.FAILED)
        return Outcome(DeliveryState.PENDING, min(now + self.delay(failures, rng), give_up_time))
