"""Domain values -> optix.alert.v1 messages (requests go through validation.py)."""

from __future__ import annotations

from types import MappingProxyType

from google.protobuf.duration_pb2 import Duration

from optix.alert.v1 import alert_event_pb2, alert_pb2
from optix_server.alert.conditions import (
    AlertState,
    Condition,
    ConditionKind,
    Direction,
    Frequency,
    MoveBasis,
    PriceType,
)
from optix_server.alert.domain import Alert, AlertEvent, DeliveryState
from optix_server.alert.names import ALERTS
from optix_server.common.proto_values import instrument, timestamp
from optix_server.infra.aip.etags import etag_of

STATES = MappingProxyType(
    {
        AlertState.ACTIVE: alert_pb2.ALERT_STATE_ACTIVE,
        AlertState.DISABLED: alert_pb2.ALERT_STATE_DISABLED,
        AlertState.COMPLETED: alert_pb2.ALERT_STATE_COMPLETED,
        AlertState.EXPIRED: alert_pb2.ALERT_STATE_EXPIRED,
    }
)
_DELIVERY = MappingProxyType(
    {
        DeliveryState.NOT_CONFIGURED: alert_event_pb2.WEBHOOK_DELIVERY_STATE_NOT_CONFIGURED,
        DeliveryState.PENDING: alert_event_pb2.WEBHOOK_DELIVERY_STATE_PENDING,
        DeliveryState.DELIVERED: alert_event_pb2.WEBHOOK_DELIVERY_STATE_DELIVERED,
        DeliveryState.FAILED: alert_event_pb2.WEBHOOK_DELIVERY_STATE_FAILED,
    }
)
_FREQUENCIES = MappingProxyType(
    {
        Frequency.ONCE: alert_pb2.ALERT_FREQUENCY_ONCE,
        Frequency.EVERY_TIME: alert_pb2.ALERT_FREQUENCY_EVERY_TIME,
        Frequency.ONCE_PER_TRADING_DAY: alert_pb2.ALERT_FREQUENCY_ONCE_PER_TRADING_DAY,
    }
)
_DIRECTIONS = MappingProxyType(
    {
        Direction.UP: alert_pb2.MOVE_DIRECTION_UP,
        Direction.DOWN: alert_pb2.MOVE_DIRECTION_DOWN,
        Direction.EITHER: alert_pb2.MOVE_DIRECTION_EITHER,
    }
)
_PRICE_TYPES = MappingProxyType(
    {
        PriceType.LAST: alert_pb2.PRICE_TYPE_LAST,
        PriceType.MARK: alert_pb2.PRICE_TYPE_MARK,
        PriceType.BID: alert_pb2.PRICE_TYPE_BID,
        PriceType.ASK: alert_pb2.PRICE_TYPE_ASK,
    }
)


def _duration(seconds: float) -> Duration:
    value = Duration()
    value.FromNanoseconds(round(seconds * 1e9))
    return value


def condition_to_proto(condition: Condition) -> alert_pb2.AlertCondition:
    """The AlertCondition message, defaults shown as resolved (e.g. the price type used)."""
    c = condition
    # Unset (0) where the kind has none.
    direction = (
        _DIRECTIONS[c.direction]
        if c.direction is not None
        else alert_pb2.MOVE_DIRECTION_UNSPECIFIED
    )
    price_type = alert_pb2.PRICE_TYPE_UNSPECIFIED
    if c.price_type is not None:
        price_type = _PRICE_TYPES[c.price_type]
    message = alert_pb2.AlertCondition()
    match c.kind:
        case ConditionKind.PRICE_ABOVE | ConditionKind.PRICE_BELOW:
            getattr(message, c.kind.value).CopyFrom(
                alert_pb2.PriceThreshold(price=c.level, price_type=price_type)
            )
        case ConditionKind.PRICE_CROSSING:
            message.price_crossing.CopyFrom(
                alert_pb2.PriceCrossing(price=c.level, direction=direction, price_type=price_type)
            )
        case ConditionKind.PERCENT_MOVE:
            move = alert_pb2.PercentMove(
                percent=c.level,
                direction=direction,
                price_type=price_type,
                basis=alert_pb2.PERCENT_MOVE_BASIS_WINDOW
                if c.basis is MoveBasis.WINDOW
                else alert_pb2.PERCENT_MOVE_BASIS_PREVIOUS_CLOSE,
            )
            if c.window is not None:
                move.window.CopyFrom(_duration(c.window.total_seconds()))
            message.percent_move.CopyFrom(move)
        case ConditionKind.DAY_VOLUME_ABOVE:
            message.day_volume_above.CopyFrom(alert_pb2.VolumeThreshold(volume=int(c.level)))
        case ConditionKind.IMPLIED_VOLATILITY_ABOVE | ConditionKind.IMPLIED_VOLATILITY_BELOW:
            getattr(message, c.kind.value).CopyFrom(
                alert_pb2.ImpliedVolatilityThreshold(implied_volatility=c.level)
            )
        case ConditionKind.DELTA_CROSSING:
            message.delta_crossing.CopyFrom(
                alert_pb2.DeltaCrossing(delta=c.level, direction=direction)
            )
    return message


def alert_to_proto(alert: Alert) -> alert_pb2.Alert:
    """The Alert message; the signing secret itself is never part of it."""
    message = alert_pb2.Alert(
        name=ALERTS.format(alert.user_id, alert.id),
        display_name=alert.display_name,
        symbol=alert.symbol,
        instrument=instrument(alert.symbol),
        condition=condition_to_proto(alert.condition),
        frequency=_FREQUENCIES[alert.frequency],
        state=STATES[alert.state],
        delivery=alert_pb2.AlertDelivery(
            webhook_url=alert.webhook_url, webhook_disabled=alert.webhook_disabled
        ),
        note=alert.note,
        fire_count=alert.fire_count,
        create_time=timestamp(alert.create_time),
        update_time=timestamp(alert.update_time),
        etag=etag_of(alert.id, alert.revision),
    )
    if alert.frequency is Frequency.EVERY_TIME:
        message.cooldown.CopyFrom(_duration(alert.cooldown.total_seconds()))
    if alert.expire_time is not None:
        message.expire_time.CopyFrom(timestamp(alert.expire_time))
    if alert.last_fire_time is not None:
        message.last_fire_time.CopyFrom(timestamp(alert.last_fire_time))
    if alert.webhook_secret_create_time is not None:
        message.delivery.webhook_signing_secret_create_time.CopyFrom(
            timestamp(alert.webhook_secret_create_time)
        )
    return message


def event_name(user_id: str, alert_id: str, event_id: int) -> str:
    """`users/{user}/alerts/{alert}/events/{event_id}`."""
    return f"{ALERTS.format(user_id, alert_id)}/events/{event_id}"


def event_to_proto(event: AlertEvent) -> alert_event_pb2.AlertEvent:
    """The AlertEvent message (the webhook body is its proto3 JSON form)."""
    return alert_event_pb2.AlertEvent(
        name=event_name(event.user_id, event.alert_id, event.event_id),
        event_id=event.event_id,
        alert=ALERTS.format(event.user_id, event.alert_id),
        alert_display_name=event.alert_display_name,
        symbol=event.symbol,
        condition=condition_to_proto(event.condition),
        fire_time=timestamp(event.fire_time),
        trigger_values=alert_event_pb2.AlertTriggerValues.FromString(event.trigger_values),
        message=event.message,
        alert_state=STATES[event.alert_state],
        webhook_delivery=_DELIVERY[event.webhook_delivery],
    )
