"""The engine's inputs and outputs: an evaluable alert, a candidate firing, and the interface
that both engines (indexed and brute force) implement."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from optix_server.alert.conditions import DEFAULT_COOLDOWN, Condition, Frequency, Tick


@dataclass(frozen=True, slots=True)
class AlertSpec:
    """One ACTIVE alert as stored: what it watches, how often it may fire, and its firing
    state (`last_fire_time` decides when EVERY_TIME and ONCE_PER_TRADING_DAY alerts are next
    eligible). `cooldown` matters for EVERY_TIME only."""

    alert_id: str
    symbol: str
    condition: Condition
    frequency: Frequency = Frequency.ONCE
    cooldown: timedelta = DEFAULT_COOLDOWN
    expire_time: datetime | None = None
    last_fire_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    """An alert whose condition is met on a tick, proposed for firing.

    `observed` is the value compared, in the condition's units (the signed move in percent for
    percent moves); `reference` what the comparison started from: the previous close or the
    price `window` ago for percent moves, the previous quote's value for crossings, None for
    thresholds (AlertTriggerValues.observed_value / reference_value)."""

    alert_id: str
    observed: float
    reference: float | None = None


class ConditionEngine(Protocol):
    """Evaluates the active alerts against ticks; see the package docstring for the contract."""

    def add(self, spec: AlertSpec) -> None:
        """Start evaluating an alert (Create, Enable); an alert already held is replaced and
        its crossing side reset."""

    def update(self, spec: AlertSpec) -> None:
        """Apply an alert's new settings (Update); the crossing side is kept unless the
        symbol or condition changed. Adds the alert if it is not held."""

    def remove(self, alert_id: str) -> bool:
        """Stop evaluating an alert (Delete, Disable, fired elsewhere); False if not held."""

    def replace_all(self, specs: Iterable[AlertSpec]) -> None:
        """Hold exactly these alerts, all with fresh state (the rebuild at start)."""

    def evaluate(self, tick: Tick) -> list[Candidate]:
        """Advance to the tick's time, then the alerts on its symbol whose condition is met
        and that are eligible to fire."""

    def mark_fired(self, alert_id: str, fire_time: datetime) -> None:
        """Record a firing the database accepted."""

    def expire_due(self, now: datetime) -> list[str]:
        """Advance to `now`; the alerts whose expire_time has come since the last call."""

    def __len__(self) -> int:
        """How many alerts are held."""

    def __contains__(self, alert_id: object) -> bool:
        """Whether an alert is held."""
