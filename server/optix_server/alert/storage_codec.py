"""Conditions as the JSON text stored with their alert (names, not proto numbers, so the
stored form survives any renumbering of enums)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from optix_server.alert.conditions import Condition, ConditionKind, Direction, MoveBasis, PriceType


def condition_json(condition: Condition) -> str:
    """The stored form of a condition."""
    value: dict[str, Any] = {"kind": condition.kind.value, "level": condition.level}
    if condition.direction is not None:
        value["direction"] = condition.direction.value
    if condition.price_type is not None:
        value["price_type"] = condition.price_type.value
    if condition.basis is not None:
        value["basis"] = condition.basis.value
    if condition.window is not None:
        value["window_seconds"] = condition.window.total_seconds()
    return json.dumps(value, separators=(",", ":"))


def condition_from_json(text: str) -> Condition:
    """Inverse of condition_json."""
    value = json.loads(text)
    return Condition(
        kind=ConditionKind(value["kind"]),
        level=float(value["level"]),
        direction=Direction(value["direction"]) if "direction" in value else None,
        price_type=PriceType(value["price_type"]) if "price_type" in value else None,
        basis=MoveBasis(value["basis"]) if "basis" in value else None,
        window=timedelta(seconds=value["window_seconds"]) if "window_seconds" in value else None,
    )
