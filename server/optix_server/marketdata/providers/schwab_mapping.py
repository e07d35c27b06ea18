"""Schwab market data JSON -> domain values (quotes, chains, expirations, candles)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from types import MappingProxyType
from typing import Any

from optix_server.common.occ import OccSymbol, OptionRight, SymbolError, parse_occ
from optix_server.marketdata.models import (
    BarInterval,
    DataSource,
    Expiration,
    ExpirationType,
    InstrumentType,
    OptionMarket,
    PriceBar,
    Quote,
)
from optix_server.marketdata.providers.bars import bar_start

_ASSET_TYPES = MappingProxyType({"OPTION": InstrumentType.OPTION, "INDEX": InstrumentType.INDEX})
_EXPIRATION_TYPES = MappingProxyType(
    {
        "W": ExpirationType.WEEKLY,
        "Q": ExpirationType.QUARTERLY,
        "S": ExpirationType.STANDARD,
        "M": ExpirationType.STANDARD,
    }
)


def _num(data: Mapping[str, Any], *keys: str) -> float:
    for key in keys:
        value = data.get(key)
        if isinstance(value, int | float):
            return float(value)
    return 0.0


def _ms_time(value: float) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC) if value > 0 else datetime.now(UTC)


def quote_from_json(symbol: str, entry: Mapping[str, Any]) -> Quote:
    """A quote from one entry of GET /quotes (fields under "quote")."""
    q: Mapping[str, Any] = entry.get("quote") or {}
    stamp = max(_num(q, "quoteTime"), _num(q, "tradeTime"))
    return Quote(
        symbol=symbol,
        instrument_type=_ASSET_TYPES.get(str(entry.get("assetMainType")), InstrumentType.EQUITY),
        bid=_num(q, "bidPrice"),
        ask=_num(q, "askPrice"),
        last=_num(q, "lastPrice"),
        bid_size=int(_num(q, "bidSize")),
        ask_size=int(_num(q, "askSize")),
        volume=int(_num(q, "totalVolume")),
        open=_num(q, "openPrice"),
        high=_num(q, "highPrice"),
        low=_num(q, "lowPrice"),
        previous_close=_num(q, "closePrice"),
        quote_time=_ms_time(stamp),
        source=DataSource.SCHWAB,
        # Schwab's quote time (ms) only grows with updates: a sequence every replica agrees on.
        sequence=int(stamp),
    )


def quotes_from_json(body: Any) -> dict[str, Quote]:
    """Every quote in a GET /quotes body (the "errors" entry lists invalid symbols)."""
    if not isinstance(body, dict):
        return {}
    return {
        symbol: quote_from_json(symbol, entry)
        for symbol, entry in body.items()
        if symbol != "errors" and isinstance(entry, dict) and isinstance(entry.get("quote"), dict)
    }


def underlying_from_chain(symbol: str, body: Mapping[str, Any]) -> Quote:
    """The underlying's quote from a GET /chains body (its "underlying" object if present)."""
    u: Mapping[str, Any] = body.get("underlying") or {}
    price = _num(body, "underlyingPrice")
    last = _num(u, "last") or price
    stamp = _num(u, "quoteTime", "tradeTime")
    return Quote(
        symbol=symbol,
        instrument_type=InstrumentType.INDEX if body.get("isIndex") else InstrumentType.EQUITY,
        bid=_num(u, "bid") or price,
        ask=_num(u, "ask") or price,
        last=last,
        bid_size=int(_num(u, "bidSize")),
        ask_size=int(_num(u, "askSize")),
        volume=int(_num(u, "totalVolume")),
        open=_num(u, "openPrice"),
        high=_num(u, "highPrice"),
        low=_num(u, "lowPrice"),
        previous_close=_num(u, "close"),
        quote_time=_ms_time(stamp),
        source=DataSource.SCHWAB,
        sequence=int(stamp),
    )


def _contract_symbol(underlying: str, c: Mapping[str, Any]) -> OccSymbol | None:
    try:
        return parse_occ(str(c.get("symbol", "")))
    except SymbolError:
        pass
    # Fall back to the parts when the symbol is not plain OCC (e.g. mini or adjusted series).
    try:
        expiry = date.fromisoformat(str(c.get("expirationDate", ""))[:10])
        right = OptionRight.CALL if c.get("putCall") == "CALL" else OptionRight.PUT
        root = str(c.get("optionRoot") or underlying)
        return OccSymbol.build(root, expiry, right, _num(c, "strikePrice"))
    except (ValueError, SymbolError):
        return None


def chain_contracts(underlying: str, body: Mapping[str, Any]) -> list[OptionMarket]:
    """Every contract of callExpDateMap and putExpDateMap."""
    markets: list[OptionMarket] = []
    for key in ("callExpDateMap", "putExpDateMap"):
        by_expiry = body.get(key) or {}
        for strikes in by_expiry.values():
            for contracts in strikes.values():
                for c in contracts:
                    symbol = _contract_symbol(underlying, c)
                    if symbol is None:
                        continue
                    markets.append(
                        OptionMarket(
                            contract=symbol,
                            bid=_num(c, "bid", "bidPrice"),
                            ask=_num(c, "ask", "askPrice"),
                            last=_num(c, "last", "lastPrice"),
                            volume=int(_num(c, "totalVolume")),
                            open_interest=int(_num(c, "openInterest")),
                            multiplier=int(_num(c, "multiplier") or 100),
                        )
                    )
    return markets


def expirations_from_json(body: Any) -> list[Expiration]:
    """Expirations of a GET /expirationchain body."""
    result: dict[date, ExpirationType] = {}
    for item in (body or {}).get("expirationList") or []:
        try:
            day = date.fromisoformat(str(item.get("expirationDate", ""))[:10])
        except ValueError:
            continue
        kind = _EXPIRATION_TYPES.get(str(item.get("expirationType")), ExpirationType.STANDARD)
        result.setdefault(day, kind)
    return [Expiration(d, t) for d, t in sorted(result.items())]


def candles_from_json(body: Any, interval: BarInterval, fetched_minutes: int) -> list[PriceBar]:
    """Bars from a GET /pricehistory body, merged into `interval` when Schwab's native
    frequency is finer (e.g. hourly bars from 30-minute candles)."""
    bars: list[PriceBar] = []
    for c in (body or {}).get("candles") or []:
        stamp = _num(c, "datetime") / 1000
        start = bar_start(stamp, interval) if interval.value > fetched_minutes * 60 else stamp
        bar = PriceBar(
            datetime.fromtimestamp(start, UTC),
            _num(c, "open"),
            _num(c, "high"),
            _num(c, "low"),
            _num(c, "close"),
            int(_num(c, "volume")),
        )
        if bars and bars[-1].start_time == bar.start_time:
            prev = bars[-1]
            bar = PriceBar(
                prev.start_time,
                prev.open,
                max(prev.high, bar.high),
                min(prev.low, bar.low),
                bar.close,
                prev.volume + bar.volume,
            )
            bars[-1] = bar
        else:
            bars.append(bar)
    return bars
