"""Exact money: decimal.Decimal in the domain, optix.common.v1.Money / Decimal on the wire.

Never float: a provider's JSON numbers are decoded straight to Decimal (see `decode_json`), and
amounts leave as integer units plus nanos.
"""

from __future__ import annotations

import json
import re
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any

from optix.common.v1 import money_pb2

NANOS_PER_UNIT = 1_000_000_000
MAX_NANOS = NANOS_PER_UNIT - 1
# int64 bounds of Money.units.
MAX_UNITS = 2**63 - 1
DEFAULT_CURRENCY = "USD"

_PLAIN_DECIMAL = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class MoneyError(ValueError):
    """A value that is not an exact, finite amount (or a malformed wire amount)."""


def to_decimal(value: object) -> Decimal:
    """An exact Decimal from a JSON-decoded or textual number; floats go through their shortest
    repr (what the provider wrote), bools and non-finite values are refused."""
    if isinstance(value, bool) or value is None:
        raise MoneyError(f"not a number: {value!r}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip()
        if not _NUMBER.match(text):
            raise MoneyError(f"not a decimal number: {value!r}")
        result = Decimal(text)
    else:
        raise MoneyError(f"not a number: {value!r}")
    if not result.is_finite():
        raise MoneyError(f"not a finite number: {value!r}")
    return result


def decode_json(text: str) -> Any:
    """json.loads with every non-integer number as Decimal, so no amount is ever a float."""
    return json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)


def _refuse_constant(name: str) -> Any:
    # NaN / Infinity are not amounts; a body carrying them is malformed.
    raise ValueError(f"non-finite number {name} in JSON")


# Enough digits for int64 units plus nine decimals (the default context has 28).
_NANOS_CONTEXT = Context(prec=40, rounding=ROUND_HALF_EVEN)
_ONE = Decimal(1)


def to_money(amount: Decimal, currency_code: str = DEFAULT_CURRENCY) -> money_pb2.Money:
    """The wire Money of an amount, rounded half-even to nanos (Money's precision)."""
    if not amount.is_finite():
        raise MoneyError("amount must be finite")
    if currency_code != DEFAULT_CURRENCY and not _CURRENCY.match(currency_code):
        raise MoneyError(f"currency code must be 3 uppercase letters, got {currency_code!r}")
    if abs(amount) >= MAX_UNITS + 1:
        raise MoneyError("amount is too large for Money")
    # An explicit context, not a localcontext() per call: a portfolio converts thousands of
    # amounts, and entering a context cost a quarter of GetPortfolio's time.
    nanos_total = int(
        amount.scaleb(9, context=_NANOS_CONTEXT).quantize(_ONE, context=_NANOS_CONTEXT)
    )
    # divmod on the magnitude, so units and nanos carry the same sign (Money's rule).
    sign = -1 if nanos_total < 0 else 1
    units, nanos = divmod(abs(nanos_total), NANOS_PER_UNIT)
    if units > MAX_UNITS:
        raise MoneyError("amount is too large for Money")
    return money_pb2.Money(currency_code=currency_code, units=sign * units, nanos=sign * nanos)


def from_money(money: money_pb2.Money) -> Decimal:
    """The exact amount of a wire Money; MoneyError when nanos are out of range or disagree in
    sign with units."""
    if not -MAX_NANOS <= money.nanos <= MAX_NANOS:
        raise MoneyError("nanos must be within [-999999999, 999999999]")
    if (money.units > 0 and money.nanos < 0) or (money.units < 0 and money.nanos > 0):
        raise MoneyError("units and nanos must have the same sign")
    return Decimal(money.units) + Decimal(money.nanos).scaleb(-9)


def format_decimal(value: Decimal) -> str:
    """Plain notation without exponent or superfluous zeros ("12.5", "-0.0003", "100")."""
    if not value.is_finite():
        raise MoneyError("value must be finite")
    if value.is_zero():
        return "0"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def to_decimal_proto(value: Decimal) -> money_pb2.Decimal:
    """The wire Decimal (a plain-notation string) of a quantity."""
    return money_pb2.Decimal(value=format_decimal(value))


def from_decimal_proto(message: money_pb2.Decimal) -> Decimal:
    """The quantity of a wire Decimal; MoneyError unless it is plain notation."""
    text = message.value.strip()
    if not _PLAIN_DECIMAL.match(text):
        raise MoneyError(f"decimal must be plain notation like '12.5', got {message.value!r}")
    return Decimal(text)
