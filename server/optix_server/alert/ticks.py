"""Quotes as the engine reads them, and what a firing records of them: the trigger values and
the event's human-readable message."""

from __future__ import annotations

from datetime import UTC

from optix.alert.v1 import alert_event_pb2
from optix.marketdata.v1 import quote_pb2
from optix_server.alert.conditions import ConditionKind, Tick
from optix_server.alert.domain import Alert
from optix_server.alert.engine import Candidate


def tick_from_quote(quote: quote_pb2.Quote) -> Tick:
    """The engine's view of a market data quote (IV and delta only when solved)."""
    analytics = quote.option_analytics if quote.HasField("option_analytics") else None
    solved = analytics is not None and analytics.status == quote_pb2.OPTION_ANALYTICS_STATUS_OK
    return Tick(
        symbol=quote.symbol,
        time=quote.quote_time.ToDatetime(UTC),
        last=quote.last,
        mark=quote.mark,
        bid=quote.bid,
        ask=quote.ask,
        volume=quote.volume,
        previous_close=quote.previous_close,
        implied_volatility=analytics.implied_volatility if solved and analytics else None,
        delta=analytics.delta if solved and analytics else None,
    )


def trigger_values(quote: quote_pb2.Quote, candidate: Candidate) -> bytes:
    """AlertTriggerValues of a firing, serialised for the event row."""
    values = alert_event_pb2.AlertTriggerValues(quote=quote, observed_value=candidate.observed)
    if candidate.reference is not None:
        values.reference_value = candidate.reference
    tick = tick_from_quote(quote)
    if tick.implied_volatility is not None:
        values.implied_volatility = tick.implied_volatility
    if tick.delta is not None:
        values.delta = tick.delta
    return values.SerializeToString()


def _from_below(candidate: Candidate, level: float) -> bool:
    """Whether a crossing came from below the level (its previous value was under it)."""
    return candidate.reference is not None and candidate.reference < level


def _price(value: float) -> str:
    return f"{value:,.2f}"


def message(alert: Alert, candidate: Candidate, quote: quote_pb2.Quote) -> str:
    """What happened, e.g. "AAPL crossed above 190.00 (last 190.12)", then the user's note."""
    c = alert.condition
    symbol = " ".join(alert.symbol.split())
    price_name = c.price_type.value if c.price_type else "price"
    observed = candidate.observed
    match c.kind:
        case ConditionKind.PRICE_ABOVE:
            text = f"{symbol} is above {_price(c.level)} ({price_name} {_price(observed)})"
        case ConditionKind.PRICE_BELOW:
            text = f"{symbol} is below {_price(c.level)} ({price_name} {_price(observed)})"
        case ConditionKind.PRICE_CROSSING:
            way = "above" if _from_below(candidate, c.level) else "below"
            text = f"{symbol} crossed {way} {_price(c.level)} ({price_name} {_price(observed)})"
        case ConditionKind.PERCENT_MOVE:
            text = f"{symbol} moved {observed:+.2f}% ({price_name} {_price(quote.last)})"
        case ConditionKind.DAY_VOLUME_ABOVE:
            text = f"{symbol} volume {int(observed):,} is above {int(c.level):,}"
        case ConditionKind.IMPLIED_VOLATILITY_ABOVE:
            text = f"{symbol} implied volatility {observed:.1%} is above {c.level:.1%}"
        case ConditionKind.IMPLIED_VOLATILITY_BELOW:
            text = f"{symbol} implied volatility {observed:.1%} is below {c.level:.1%}"
        case ConditionKind.DELTA_CROSSING:
            way = (
                "up"
                if candidate.reference is not None and observed > candidate.reference
                else "down"
            )
            text = f"{symbol} delta crossed {c.level:g} {way} (delta {observed:.3f})"
    return f"{text}\n{alert.note}" if alert.note else text
