"""Minimum price increments (common/price_increments.py): the tick rules by instrument, rounding
onto them without float noise, and derived prices that print as the decimals they are."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from optix_server.common.price_increments import (
    ALL_PENNY_OPTION_TICKS,
    EQUITY_TICKS,
    PENNY_OPTION_TICKS,
    STANDARD_OPTION_TICKS,
    TickRule,
    midpoint,
    option_ticks,
    percent_of,
    price_difference,
)

RULES = [EQUITY_TICKS, ALL_PENNY_OPTION_TICKS, PENNY_OPTION_TICKS, STANDARD_OPTION_TICKS]
prices = st.floats(min_value=0.0, max_value=5000.0, allow_nan=False)


def short(price: float) -> bool:
    """Whether the price prints with at most two decimals (no float noise)."""
    return len(repr(price).partition(".")[2]) <= 2


def test_option_tick_rules_by_class() -> None:
    assert option_ticks("SPY") is ALL_PENNY_OPTION_TICKS
    assert option_ticks("AAPL") is PENNY_OPTION_TICKS
    assert option_ticks("ZZZZ") is STANDARD_OPTION_TICKS
    assert [PENNY_OPTION_TICKS.tick(p) for p in (0.5, 2.99, 3.0, 12.0)] == [0.01, 0.01, 0.05, 0.05]
    assert [STANDARD_OPTION_TICKS.tick(p) for p in (0.5, 2.99, 3.0)] == [0.05, 0.05, 0.10]
    assert ALL_PENNY_OPTION_TICKS.tick(40.0) == 0.01 == EQUITY_TICKS.tick(0.5)


def test_rounding_onto_the_tick() -> None:
    assert PENNY_OPTION_TICKS.floor(3.04) == 3.0 and PENNY_OPTION_TICKS.ceil(3.01) == 3.05
    assert PENNY_OPTION_TICKS.floor(2.999) == 2.99 and PENNY_OPTION_TICKS.ceil(2.991) == 3.0
    assert STANDARD_OPTION_TICKS.nearest(3.04) == 3.0 and STANDARD_OPTION_TICKS.nearest(3.06) == 3.1
    # 0.15 / 0.05 is 2.9999999999999996 in floats: still three nickels, not two.
    assert STANDARD_OPTION_TICKS.floor(0.15) == 0.15 and STANDARD_OPTION_TICKS.ceil(0.15) == 0.15
    assert EQUITY_TICKS.nearest(189.37000000000001) == 189.37
    assert repr(EQUITY_TICKS.nearest(0.1 + 0.2)) == "0.3"
    assert PENNY_OPTION_TICKS.on_tick(3.05) and not PENNY_OPTION_TICKS.on_tick(3.04)
    assert not EQUITY_TICKS.on_tick(0.1 + 0.2)


@given(prices)
def test_every_rounding_lands_on_a_tick_that_prints_short(price: float) -> None:
    for rule in RULES:
        down, up, near = rule.floor(price), rule.ceil(price), rule.nearest(price)
        assert down <= price + 1e-6 and up >= price - 1e-6
        assert abs(near - price) <= rule.tick(price) / 2 + 1e-9
        for result in (down, up, near):
            assert rule.on_tick(result) and short(result), (rule, price, result)


@given(st.lists(prices, min_size=1, max_size=20))
def test_array_rounding_agrees_with_scalar_rounding(values: list[float]) -> None:
    array = np.array(values, dtype=np.float64)
    for rule in RULES:
        assert rule.floor_array(array).tolist() == [rule.floor(v) for v in values]
        assert rule.ceil_array(array).tolist() == [rule.ceil(v) for v in values]
        assert rule.nearest_array(array).tolist() == [rule.nearest(v) for v in values]


def test_equity_rounding_is_numpys_cent_rounding() -> None:
    # The simulated market's bars round with the same rule its quotes do.
    values = np.random.default_rng(3).uniform(0, 1000, 10_000)
    assert np.array_equal(EQUITY_TICKS.nearest_array(values), np.round(values, 2))


@given(st.integers(1, 100_000), st.integers(1, 100_000))
def test_derived_prices_carry_no_float_noise(a_cents: int, b_cents: int) -> None:
    a, b = a_cents / 100, b_cents / 100
    assert repr(price_difference(a, b)) == repr((a_cents - b_cents) / 100)
    mid = midpoint(a, b)
    assert mid == (a_cents + b_cents) / 200
    assert len(repr(mid).partition(".")[2]) <= 3
    assert percent_of(price_difference(a, b), b) == round((a_cents - b_cents) / b_cents * 100, 4)


def test_the_issues_example() -> None:
    # AAPL at 190.04 against its 190.00 close: the plain difference is the noise users saw.
    assert repr(190.04 - 190.0) == "0.03999999999999204"
    assert repr(price_difference(190.04, 190.0)) == "0.04"
    assert repr(percent_of(price_difference(190.04, 190.0), 190.0)) == "0.0211"
    assert repr(midpoint(189.36, 189.39)) == "189.375"
    assert TickRule(0.01, 0.01).nearest(189.36 + 0.01) == 189.37
