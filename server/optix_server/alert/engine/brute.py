"""The brute-force engine: the reference the indexed engine is tested against, and the naive
scan the benchmark compares it with. Every tick checks every alert with the plain semantics of
the proto comments; there is no index, no pending set and no timer queue, only a per-alert record.
The window histories are the shared WindowHistories (so both engines agree on which samples
exist), read here with a linear scan."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from optix_server.alert.conditions import (
    ConditionKind,
    Direction,
    Frequency,
    MoveBasis,
    PriceType,
    Tick,
    observed,
    percent_move,
)
from optix_server.alert.engine.channels import finite, usable_price
from optix_server.alert.engine.history import DEFAULT_MAX_SAMPLES, WindowHistories
from optix_server.alert.engine.spec import AlertSpec, Candidate
from optix_server.alert.engine.timing import (
    NEVER,
    duration_micros,
    to_micros,
    trading_date,
)
from optix_server.common.exchange_calendar import ExchangeCalendar, us_options_calendar


@dataclass(slots=True)
class _Alert:
    """One held alert and its evaluation state."""

    spec: AlertSpec
    expire_at: int
    last_fire: int | None
    # A crossing's value on the last tick that had one; None until its first such tick.
    previous: float | None = None


class BruteForceEngine:
    """The reference engine: a scan of every alert per tick (see the package docstring)."""

    def __init__(
        self, max_samples: int = DEFAULT_MAX_SAMPLES, calendar: ExchangeCalendar | None = None
    ) -> None:
        self._calendar = calendar or us_options_calendar()
        self._alerts: dict[str, _Alert] = {}
        self._histories = WindowHistories(max_samples)
        self._max_samples = max_samples
        self._clock = 0
        self._expired: list[str] = []
        # The current tick's window samples per price type, read once per tick.
        self._samples: dict[PriceType, list[tuple[int, float]]] = {}

    def __len__(self) -> int:
        return len(self._alerts)

    def __contains__(self, alert_id: object) -> bool:
        return alert_id in self._alerts

    def add(self, spec: AlertSpec) -> None:
        """Start evaluating an alert; one already held is replaced with a fresh side."""
        self.remove(spec.alert_id)
        expire_at = NEVER if spec.expire_time is None else to_micros(spec.expire_time)
        last_fire = None if spec.last_fire_time is None else to_micros(spec.last_fire_time)
        self._alerts[spec.alert_id] = _Alert(spec, expire_at, last_fire)
        window = _window(spec)
        if window is not None:
            assert spec.condition.price_type is not None
            self._histories.watch(spec.symbol, spec.condition.price_type, window)

    def update(self, spec: AlertSpec) -> None:
        """Apply new settings, keeping the crossing side unless symbol or condition changed."""
        old = self._alerts.get(spec.alert_id)
        if old is None or (old.spec.symbol, old.spec.condition) != (spec.symbol, spec.condition):
            self.add(spec)
            return
        old.spec = spec
        old.expire_at = NEVER if spec.expire_time is None else to_micros(spec.expire_time)
        old.last_fire = None if spec.last_fire_time is None else to_micros(spec.last_fire_time)

    def remove(self, alert_id: str) -> bool:
        """Stop evaluating an alert; False if it was not held."""
        alert = self._alerts.pop(alert_id, None)
        if alert is None:
            return False
        window = _window(alert.spec)
        if window is not None:
            assert alert.spec.condition.price_type is not None
            self._histories.unwatch(alert.spec.symbol, alert.spec.condition.price_type, window)
        return True

    def replace_all(self, specs: Iterable[AlertSpec]) -> None:
        """Hold exactly these alerts, with fresh state."""
        self._alerts.clear()
        self._histories = WindowHistories(self._max_samples)
        self._expired.clear()
        for spec in specs:
            if spec.alert_id in self._alerts:
                raise ValueError(f"alert {spec.alert_id!r} listed twice")
            self.add(spec)

    def evaluate(self, tick: Tick) -> list[Candidate]:
        """Advance to the tick's time, then check every alert on the tick's symbol."""
        self._advance(to_micros(tick.time))
        self._histories.record(tick)
        self._samples.clear()
        found: list[Candidate] = []
        for alert in self._alerts.values():
            if alert.spec.symbol == tick.symbol:
                candidate = self._check(alert, tick)
                if candidate is not None:
                    found.append(candidate)
        return found

    def mark_fired(self, alert_id: str, fire_time: datetime) -> None:
        """Record a firing: ONCE alerts leave, the others remember when they fired."""
        alert = self._alerts.get(alert_id)
        if alert is None:
            return
        if alert.spec.frequency is Frequency.ONCE:
            self.remove(alert_id)
        else:
            alert.last_fire = to_micros(fire_time)

    def expire_due(self, now: datetime) -> list[str]:
        """Advance to `now`; the alerts that expired since the last call (they are dropped)."""
        self._advance(to_micros(now))
        expired, self._expired = self._expired, []
        return expired

    def _advance(self, now: int) -> None:
        self._clock = max(self._clock, now)
        for alert_id in [i for i, a in self._alerts.items() if a.expire_at <= self._clock]:
            self._expired.append(alert_id)
            self.remove(alert_id)

    def _eligible(self, alert: _Alert) -> bool:
        """Whether the alert may fire now, given when it last fired."""
        spec, last = alert.spec, alert.last_fire
        if last is None or spec.frequency is Frequency.ONCE:
            return True
        if spec.frequency is Frequency.EVERY_TIME:
            return self._clock >= last + duration_micros(spec.cooldown)
        return trading_date(self._clock, self._calendar) > trading_date(last, self._calendar)

    def _check(self, alert: _Alert, tick: Tick) -> Candidate | None:
        """The alert's candidate on this tick, if its condition is met and it may fire."""
        condition, alert_id = alert.spec.condition, alert.spec.alert_id
        kind, level, direction = condition.kind, condition.level, condition.direction
        value = finite(observed(condition, tick))
        if value is None:
            return None
        if kind.crossing:
            previous, alert.previous = alert.previous, value
            if previous is None or not self._eligible(alert):
                return None
            up = previous < level <= value
            down = previous > level >= value
            met = up if direction is Direction.UP else down
            if direction is Direction.EITHER:
                met = up or down
            return Candidate(alert_id, value, previous) if met else None
        if kind is ConditionKind.PERCENT_MOVE:
            base = self._base(alert, tick)
            if base is None:
                return None
            move = finite(percent_move(value, base))
            if move is None:
                return None
            met = move >= level if direction is Direction.UP else move <= -level
            if direction is Direction.EITHER:
                met = abs(move) >= level
            return Candidate(alert_id, move, base) if met and self._eligible(alert) else None
        if kind in (ConditionKind.PRICE_BELOW, ConditionKind.IMPLIED_VOLATILITY_BELOW):
            met = value < level
        else:
            met = value > level
        return Candidate(alert_id, value, None) if met and self._eligible(alert) else None

    def _base(self, alert: _Alert, tick: Tick) -> float | None:
        """What a percent move is measured from: the previous close, or the latest kept
        sample at or before `window` before the tick."""
        spec = alert.spec
        window = _window(spec)
        if window is None:
            return usable_price(tick.previous_close)
        assert spec.condition.price_type is not None
        samples = self._samples.get(spec.condition.price_type)
        if samples is None:
            series = self._histories.series(spec.symbol, spec.condition.price_type)
            samples = [] if series is None else series.samples()
            self._samples[spec.condition.price_type] = samples
        base = None
        cutoff = to_micros(tick.time) - window
        for time, price in samples:
            if time > cutoff:
                break
            base = price
        return base


def _window(spec: AlertSpec) -> int | None:
    """The window of a window-basis percent move, in microseconds; None for other alerts."""
    condition = spec.condition
    if condition.kind is not ConditionKind.PERCENT_MOVE or condition.basis is not MoveBasis.WINDOW:
        return None
    assert condition.window is not None
    return duration_micros(condition.window)
