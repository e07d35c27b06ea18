"""Symbols in requests, as every slice checks them: normalised through the one OCC/ticker
parser, each bad one a field violation of its own."""

from __future__ import annotations

from collections.abc import Sequence

from optix_server.common.occ import SymbolError, normalize_symbol, normalize_ticker
from optix_server.infra.errors import ViolationCollector


def ticker_field(collector: ViolationCollector, field: str, value: str) -> str:
    """A normalised ticker, or "" after recording why `value` is not one."""
    try:
        return normalize_ticker(value)
    except SymbolError as exc:
        collector.add(field, str(exc))
        return ""


def symbol_field(collector: ViolationCollector, field: str, value: str) -> str:
    """A normalised ticker or OCC symbol, or "" after recording why `value` is neither."""
    try:
        return normalize_symbol(value)
    except SymbolError as exc:
        collector.add(field, str(exc))
        return ""


def symbol_list(
    collector: ViolationCollector, field: str, values: Sequence[str], limit: int
) -> list[str]:
    """Normalised, de-duplicated symbols (request order kept), 1 to `limit` of them."""
    if not values:
        collector.add(field, "at least one symbol is required")
        return []
    if len(values) > limit:
        # Checking a huge list element by element would only produce a huge error.
        collector.add(field, f"at most {limit} symbols per request, got {len(values)}")
        return []
    result: dict[str, None] = {}
    for i, value in enumerate(values):
        symbol = symbol_field(collector, f"{field}[{i}]", value)
        if symbol:
            result[symbol] = None
    if len(result) > limit:
        collector.add(field, f"at most {limit} distinct symbols per request")
    return list(result)
