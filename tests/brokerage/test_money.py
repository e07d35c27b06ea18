"""Exact money: Decimal <-> Money / Decimal wire forms, and provider JSON decoded without float."""

from __future__ import annotations

from decimal import Decimal

import pytest

from optix.common.v1 import money_pb2
from optix_server.brokerage.money import (
    MoneyError,
    decode_json,
    format_decimal,
    from_decimal_proto,
    from_money,
    to_decimal,
    to_decimal_proto,
    to_money,
)


@pytest.mark.parametrize(
    ("amount", "units", "nanos"),
    [
        ("0", 0, 0),
        ("12.34", 12, 340_000_000),
        ("-1.5", -1, -500_000_000),
        ("-0.25", 0, -250_000_000),
        ("0.000000001", 0, 1),
        ("123456789012.999999999", 123456789012, 999_999_999),
    ],
)
def test_money_round_trip(amount: str, units: int, nanos: int) -> None:
    money = to_money(Decimal(amount))
    assert (money.currency_code, money.units, money.nanos) == ("USD", units, nanos)
    assert from_money(money) == Decimal(amount)


def test_money_rounds_half_even_to_nanos_and_refuses_nonsense() -> None:
    assert to_money(Decimal("0.0000000005")).nanos == 0
    assert to_money(Decimal("0.0000000015")).nanos == 2
    assert to_money(Decimal("1"), "EUR").currency_code == "EUR"
    with pytest.raises(MoneyError):
        to_money(Decimal("NaN"))
    with pytest.raises(MoneyError):
        to_money(Decimal("1e30"))
    with pytest.raises(MoneyError):
        to_money(Decimal(1), "usd")
    with pytest.raises(MoneyError):
        from_money(money_pb2.Money(units=1, nanos=-5))
    with pytest.raises(MoneyError):
        from_money(money_pb2.Money(units=0, nanos=1_000_000_000))


@pytest.mark.parametrize(
    ("value", "text"),
    [("12.50", "12.5"), ("-0.0003", "-0.0003"), ("1E+2", "100"), ("-0", "0"), ("2.5", "2.5")],
)
def test_decimal_wire_form_is_plain(value: str, text: str) -> None:
    assert format_decimal(Decimal(value)) == text
    message = to_decimal_proto(Decimal(value))
    assert message.value == text
    assert from_decimal_proto(message) == Decimal(value)


@pytest.mark.parametrize("text", ["", "1e5", "abc", "1.2.3", "NaN", "--1"])
def test_decimal_wire_form_refuses_other_notations(text: str) -> None:
    with pytest.raises(MoneyError):
        from_decimal_proto(money_pb2.Decimal(value=text))


def test_provider_numbers_never_become_floats() -> None:
    body = decode_json('{"cash": 0.1, "qty": 3, "big": 12345678901234567890.123456789}')
    assert body["cash"] == Decimal("0.1") and isinstance(body["cash"], Decimal)
    assert body["qty"] == 3
    assert body["big"] == Decimal("12345678901234567890.123456789")
    with pytest.raises(ValueError):
        decode_json('{"cash": NaN}')
    assert to_decimal(0.1) == Decimal("0.1")
    assert to_decimal(" 2.50 ") == Decimal("2.50")
    for bad in (True, None, "1,000", float("inf"), [1]):
        with pytest.raises(MoneyError):
            to_decimal(bad)
