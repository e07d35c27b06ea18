"""The alert slice's domain values: plain dataclasses, no storage or gRPC types."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from optix_server.alert.conditions import (
    AlertState,
    Condition,
    ConditionKind,
    Direction,
    Frequency,
    MoveBasis,
)

# States that count against the per-user limit (the alert may still fire).
ARMED_STATES = frozenset({AlertState.ACTIVE, AlertState.DISABLED})


@dataclass(frozen=True)
class Alert:
    """A user's alert at one revision."""

    id: str
    user_id: str
    display_name: str
    symbol: str
    condition: Condition
    frequency: Frequency
    cooldown: timedelta
    expire_time: datetime | None
    state: AlertState
    webhook_url: str
    webhook_disabled: bool
    # The signing secret of `webhook_url`, sealed (never the plain text); None without a URL.
    sealed_webhook_secret: str | None
    webhook_secret_create_time: datetime | None
    note: str
    last_fire_time: datetime | None
    fire_count: int
    # Bumped by every change, state changes included; the etag is derived from it.
    revision: int
    create_time: datetime
    update_time: datetime
    # The New York trading date of the last firing (ONCE_PER_TRADING_DAY).
    last_fire_date: date | None = None


class DeliveryState(enum.Enum):
    """How an event's webhook delivery is going."""

    NOT_CONFIGURED = "not_configured"
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True)
class AlertEvent:
    """One firing of an alert, as stored."""

    user_id: str
    event_id: int
    alert_id: str
    alert_display_name: str
    symbol: str
    condition: Condition
    fire_time: datetime
    # optix.alert.v1.AlertTriggerValues, serialised (the quote is the market data contract's).
    trigger_values: bytes
    message: str
    alert_state: AlertState
    webhook_delivery: DeliveryState


@dataclass(frozen=True)
class AlertPage:
    """One page of a user's alerts, and the cursor after its last one (None: no more)."""

    alerts: list[Alert] = field(default_factory=list)
    next_cursor: tuple[str, str] | None = None


def _level(value: float) -> str:
    return f"{value:,.2f}" if value >= 1 else f"{value:g}"


def default_display_name(symbol: str, condition: Condition) -> str:
    """A label from the symbol and condition, e.g. "AAPL above 190.00"."""
    c = condition
    direction = {Direction.UP: "up", Direction.DOWN: "down", Direction.EITHER: "either way"}
    match c.kind:
        case ConditionKind.PRICE_ABOVE:
            text = f"above {_level(c.level)}"
        case ConditionKind.PRICE_BELOW:
            text = f"below {_level(c.level)}"
        case ConditionKind.PRICE_CROSSING:
            text = f"crosses {_level(c.level)} {direction[c.direction or Direction.EITHER]}"
        case ConditionKind.PERCENT_MOVE:
            since = (
                f"in {_duration(c.window)}"
                if c.basis is MoveBasis.WINDOW and c.window
                else "from previous close"
            )
            text = f"moves {c.level:g}% {direction[c.direction or Direction.EITHER]} {since}"
        case ConditionKind.DAY_VOLUME_ABOVE:
            text = f"volume above {int(c.level):,}"
        case ConditionKind.IMPLIED_VOLATILITY_ABOVE:
            text = f"IV above {c.level * 100:g}%"
        case ConditionKind.IMPLIED_VOLATILITY_BELOW:
            text = f"IV below {c.level * 100:g}%"
        case ConditionKind.DELTA_CROSSING:
            text = f"delta crosses {c.level:g} {direction[c.direction or Direction.EITHER]}"
    # An OCC symbol's padding spaces collapse to one: "AAPL 240621C00190000 above 5.00".
    return f"{' '.join(symbol.split())} {text}"


def _duration(value: timedelta) -> str:
    minutes = int(value.total_seconds() // 60)
    return f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes} min"
