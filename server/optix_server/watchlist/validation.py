"""Request checks of the watchlist slice, as field violations (plain values in, no protos)."""

from __future__ import annotations

from collections.abc import Sequence

from optix_server.common.symbol_fields import symbol_field, symbol_list
from optix_server.common.text import has_control_characters
from optix_server.infra.errors import ViolationCollector

MAX_DISPLAY_NAME = 64
# Symbols one AddSymbols call may carry, and one RemoveSymbols call.
MAX_SYMBOLS_TO_ADD = 100
MAX_SYMBOLS_TO_REMOVE = 200


def display_name(collector: ViolationCollector, field: str, value: str) -> str:
    """The trimmed name: 1 to 64 characters, no control characters."""
    name = value.strip()
    if not name:
        collector.add(field, "a display name is required")
    elif len(name) > MAX_DISPLAY_NAME:
        collector.add(field, f"at most {MAX_DISPLAY_NAME} characters, got {len(name)}")
    elif has_control_characters(name):
        collector.add(field, "must not contain control characters")
    return name


def index(collector: ViolationCollector, field: str, value: int | None) -> int | None:
    """A zero-based position (None: not given); negative is a violation."""
    if value is not None and value < 0:
        collector.add(field, "must be 0 or more")
    return value


def symbols_to_add(collector: ViolationCollector, values: Sequence[str]) -> list[str]:
    """AddSymbols' symbols: 1 to 100, normalised, duplicates collapsed."""
    return symbol_list(collector, "symbols", values, MAX_SYMBOLS_TO_ADD)


def symbols_to_remove(collector: ViolationCollector, values: Sequence[str]) -> list[str]:
    """RemoveSymbols' symbols: 1 to 200, normalised."""
    return symbol_list(collector, "symbols", values, MAX_SYMBOLS_TO_REMOVE)


def item_symbols(collector: ViolationCollector, field: str, values: Sequence[str]) -> list[str]:
    """The symbols of a list's items (may be empty), normalised, duplicates collapsed."""
    result: dict[str, None] = {}
    for i, value in enumerate(values):
        symbol = symbol_field(collector, f"{field}[{i}].symbol", value)
        if symbol:
            result[symbol] = None
    return list(result)


def one_symbol(collector: ViolationCollector, field: str, value: str) -> str:
    """One normalised symbol."""
    return symbol_field(collector, field, value)
