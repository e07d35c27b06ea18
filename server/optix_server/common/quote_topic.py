"""The market data service's pub/sub contract, for whoever reads ticks straight off the bus
(the quote streams of every replica, the alert monitor): each symbol's ticks on its own channel
as encoded optix.marketdata.v1.Quote messages (option analytics included), and the demand
channel on which readers say which symbols they still need. The feed owner ticks a symbol for
DEMAND_LEASE_SECONDS after the last demand for it, so a reader repeats its demand more often."""

from __future__ import annotations

from collections.abc import Iterable

DEMAND_CHANNEL = "marketdata.demand"
DEMAND_LEASE_SECONDS = 15.0


def quote_channel(symbol: str) -> str:
    """The pub/sub channel carrying a symbol's ticks."""
    return f"marketdata.quotes.{symbol}"


def demand_message(symbols: Iterable[str]) -> bytes:
    """The demand channel's payload asking for `symbols`."""
    return "\n".join(symbols).encode()


def demanded_symbols(payload: bytes) -> list[str]:
    """The symbols a demand payload asks for."""
    return [symbol for symbol in payload.decode().split("\n") if symbol]
