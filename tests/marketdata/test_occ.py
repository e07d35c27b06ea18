"""OCC symbology: one parser/formatter, normalisation, validation and round trips."""

from __future__ import annotations

from datetime import date

import pytest

from optix_server.common.occ import (
    OccSymbol,
    OptionRight,
    SymbolError,
    is_option_symbol,
    normalize_symbol,
    normalize_ticker,
    parse_occ,
)


def test_parse_canonical_symbol() -> None:
    occ = parse_occ("AAPL  240621C00190000")
    assert occ == OccSymbol("AAPL", date(2024, 6, 21), OptionRight.CALL, 190_000)
    assert occ.strike == 190.0
    assert occ.is_call


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("aapl  240621c00190000", "AAPL  240621C00190000"),
        ("AAPL240621P00190500", "AAPL  240621P00190500"),
        ("  spy 250117p00450000 ", "SPY   250117P00450000"),
        ("SPXW  241231C05000000", "SPXW  241231C05000000"),
        ("AAPL1 240621C00012345", "AAPL1 240621C00012345"),
    ],
)
def test_normalises_case_padding_and_compact_form(raw: str, canonical: str) -> None:
    assert normalize_symbol(raw) == canonical
    assert parse_occ(raw).format() == canonical


def test_round_trip_over_many_contracts() -> None:
    for strike in (0.5, 1.0, 12.345, 190.0, 4999.999, 99999.999):
        for right in OptionRight:
            occ = OccSymbol.build("msft", date(2031, 1, 17), right, strike)
            text = occ.format()
            assert len(text) == 21
            assert parse_occ(text) == occ
            assert parse_occ(text.lower()) == occ
            assert parse_occ(text.replace(" ", "")) == occ
            assert parse_occ(text).strike == strike


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "   ",
        "AAPL  241321C00190000",  # month 13
        "AAPL  240230C00190000",  # 30 February
        "AAPL  240621X00190000",  # neither C nor P
        "AAPL  240621C0019000",  # 7-digit strike
        "AAPL  240621C00000000",  # zero strike
        "TOOLONGROOT240621C00190000",
        "AAPL  240621C00190000EXTRA",
        "AA PL 240621C00190000",
    ],
)
def test_rejects_malformed_occ(bad: str) -> None:
    with pytest.raises(SymbolError):
        normalize_symbol(bad)


def test_tickers() -> None:
    assert normalize_ticker(" brk.b ") == "BRK.B"
    assert normalize_ticker("$spx") == "$SPX"
    assert normalize_symbol("aapl") == "AAPL"
    assert not is_option_symbol("AAPL")
    assert is_option_symbol("AAPL  240621C00190000")
    for bad in ("", "1ABC", "AB CD", "A" * 11, "AAPL!", "$"):
        with pytest.raises(SymbolError):
            normalize_symbol(bad)


def test_strike_must_be_thousandths() -> None:
    with pytest.raises(SymbolError):
        OccSymbol.build("AAPL", date(2024, 6, 21), OptionRight.PUT, 1.0005)
