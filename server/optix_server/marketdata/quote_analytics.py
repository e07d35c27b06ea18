"""Implied volatility and Greeks on option quotes, so a quote alone carries what an alert on IV or
delta needs (no chain request, no other slice's pricing).

Quotes of one underlying are priced together in one compiled pass (the chain kernels), against
the underlying's mark at the same moment; equities pass through untouched, so the equity path
costs one dictionary lookup per quote."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Mapping

import numpy as np

from optix_server.common.occ import (
    OccSymbol,
    OptionRight,
    SymbolError,
    is_option_symbol,
    parse_occ,
)
from optix_server.marketdata.config import MarketDataSettings
from optix_server.marketdata.models import InstrumentType, OptionAnalytics, Quote
from optix_server.marketdata.pricing.chain import analyze_chain
from optix_server.marketdata.timeconv import years_to_expiration


def option_contract(quote: Quote) -> OccSymbol | None:
    """The parsed contract of an option quote, or None for any other quote."""
    if quote.instrument_type is not InstrumentType.OPTION:
        return None
    try:
        return parse_occ(quote.symbol)
    except SymbolError:
        return None


def option_roots(symbols: Iterable[str]) -> set[str]:
    """The underlyings of the OCC symbols among canonical `symbols`."""
    roots: set[str] = set()
    for symbol in symbols:
        if is_option_symbol(symbol):
            with contextlib.suppress(SymbolError):
                roots.add(parse_occ(symbol).root)
    return roots


class QuoteAnalyst:
    """Attaches OptionAnalytics to option quotes, given the underlyings' marks."""

    def __init__(self, settings: MarketDataSettings) -> None:
        self._settings = settings

    def price(self, quotes: Mapping[str, Quote], marks: Mapping[str, float]) -> dict[str, Quote]:
        """`quotes` with every option quote whose underlying has a mark in `marks` (or among
        `quotes`) priced; the others unchanged."""
        marks = {
            **marks,
            **{
                s: q.mark
                for s, q in quotes.items()
                if q.instrument_type is not InstrumentType.OPTION and q.mark > 0
            },
        }
        by_underlying: dict[str, list[tuple[Quote, OccSymbol]]] = {}
        for quote in quotes.values():
            contract = option_contract(quote)
            if contract is not None and marks.get(contract.root, 0.0) > 0:
                by_underlying.setdefault(contract.root, []).append((quote, contract))
        if not by_underlying:
            return dict(quotes)
        priced = dict(quotes)
        for underlying, group in by_underlying.items():
            for quote in self._price_group(marks[underlying], underlying, group):
                priced[quote.symbol] = quote
        return priced

    def _price_group(
        self, spot: float, underlying: str, group: list[tuple[Quote, OccSymbol]]
    ) -> list[Quote]:
        rate = self._settings.risk_free_rate
        dividend_yield = self._settings.dividend_yield(underlying)
        t = np.array(
            [years_to_expiration(c.expiration, q.quote_time) for q, c in group], dtype=np.float64
        )
        analytics = analyze_chain(
            spot,
            rate,
            dividend_yield,
            np.array([c.strike for _, c in group], dtype=np.float64),
            t,
            np.array([c.right is OptionRight.CALL for _, c in group], dtype=bool),
            np.array([q.bid for q, _ in group], dtype=np.float64),
            np.array([q.ask for q, _ in group], dtype=np.float64),
            np.array([q.last for q, _ in group], dtype=np.float64),
        )
        return [
            dataclasses.replace(
                quote,
                analytics=OptionAnalytics(
                    implied_volatility=iv,
                    iv_status=status,
                    greeks=greeks,
                    underlying_price=spot,
                    risk_free_rate=rate,
                    dividend_yield=dividend_yield,
                    time_to_expiration_years=years,
                    in_the_money=itm,
                ),
            )
            for (quote, _), (_, iv, status, greeks, itm), years in zip(
                group, analytics.rows(), t.tolist(), strict=True
            )
        ]
