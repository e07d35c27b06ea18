"""Black-Scholes-Merton prices, Greeks and implied volatility against independent values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optix_server.marketdata.pricing import (
    IVStatus,
    analyze_chain,
    bsm_greeks,
    bsm_price,
    implied_volatility,
)


def _norm_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2))


def test_hull_example_call() -> None:
    # Hull, Options Futures and Other Derivatives, examples 15.6 / 19.1-19.6.
    s, k, r, t, sigma = 49.0, 50.0, 0.05, 0.3846, 0.2
    price = float(bsm_price(s, k, t, r, 0.0, sigma, True))
    g = bsm_greeks(s, k, t, r, 0.0, sigma, True)
    assert price == pytest.approx(2.40, abs=0.005)
    assert float(g.delta) == pytest.approx(0.522, abs=0.0005)
    assert float(g.gamma) == pytest.approx(0.066, abs=0.0005)
    # Hull: theta -4.31 per year, vega 12.1 and rho 8.91 per unit (per point: / 100).
    assert float(g.theta) * 365 == pytest.approx(-4.31, abs=0.01)
    assert float(g.vega) * 100 == pytest.approx(12.1, abs=0.05)
    assert float(g.rho) * 100 == pytest.approx(8.91, abs=0.01)


def test_hull_dividend_yield_example() -> None:
    # Hull example 17.1: European call on an index, S=930, K=900, r=8%, q=3%, sigma=20%, T=2/12.
    price = float(bsm_price(930.0, 900.0, 2 / 12, 0.08, 0.03, 0.2, True))
    assert price == pytest.approx(51.83, abs=0.01)


def test_matches_closed_form_written_independently() -> None:
    s, k, t, r, q, v = 100.0, 95.0, 0.75, 0.03, 0.02, 0.35
    d1 = (math.log(s / k) + (r - q + v * v / 2) * t) / (v * math.sqrt(t))
    d2 = d1 - v * math.sqrt(t)
    call = s * math.exp(-q * t) * _norm_cdf(d1) - k * math.exp(-r * t) * _norm_cdf(d2)
    put = k * math.exp(-r * t) * _norm_cdf(-d2) - s * math.exp(-q * t) * _norm_cdf(-d1)
    assert float(bsm_price(s, k, t, r, q, v, True)) == pytest.approx(call, rel=1e-13)
    assert float(bsm_price(s, k, t, r, q, v, False)) == pytest.approx(put, rel=1e-13)


def test_greeks_match_finite_differences() -> None:
    s, k, t, r, q, v = 100.0, 110.0, 0.5, 0.04, 0.01, 0.3
    for call in (True, False):
        g = bsm_greeks(s, k, t, r, q, v, call)

        def p(ds: float = 0, dt: float = 0, dr: float = 0, dv: float = 0, c: bool = call) -> float:
            return float(bsm_price(s + ds, k, t + dt, r + dr, q, v + dv, c))

        h = 1e-4
        assert float(g.delta) == pytest.approx((p(ds=h) - p(ds=-h)) / (2 * h), rel=1e-6)
        # A second difference divides rounding noise by h^2: a wider step keeps it (and the
        # h^2 truncation error) far below the tolerance.
        hs = 1e-2
        assert float(g.gamma) == pytest.approx((p(ds=hs) - 2 * p() + p(ds=-hs)) / hs**2, rel=1e-6)
        assert float(g.theta) == pytest.approx(-(p(dt=h) - p(dt=-h)) / (2 * h) / 365, rel=1e-6)
        assert float(g.vega) == pytest.approx((p(dv=h) - p(dv=-h)) / (2 * h) / 100, rel=1e-6)
        assert float(g.rho) == pytest.approx((p(dr=h) - p(dr=-h)) / (2 * h) / 100, rel=1e-6)


def test_put_call_parity_and_greek_identities() -> None:
    rng = np.random.default_rng(3)
    n = 500
    s, r, q = 100.0, 0.045, 0.013
    k = rng.uniform(40, 200, n)
    t = rng.uniform(1 / 365, 3, n)
    v = rng.uniform(0.05, 1.2, n)
    c = bsm_price(s, k, t, r, q, v, True)
    p = bsm_price(s, k, t, r, q, v, False)
    forward_value = s * np.exp(-q * t) - k * np.exp(-r * t)
    np.testing.assert_allclose(c - p, forward_value, rtol=0, atol=1e-11 * s)
    gc, gp = bsm_greeks(s, k, t, r, q, v, True), bsm_greeks(s, k, t, r, q, v, False)
    np.testing.assert_allclose(gc.delta - gp.delta, np.exp(-q * t), atol=1e-14)
    np.testing.assert_allclose(gc.gamma, gp.gamma, rtol=1e-12)
    np.testing.assert_allclose(gc.vega, gp.vega, rtol=1e-12)
    np.testing.assert_allclose(gc.rho - gp.rho, k * t * np.exp(-r * t) / 100, rtol=1e-12)


def test_implied_volatility_round_trip_below_1e_10() -> None:
    rng = np.random.default_rng(11)
    n = 4000
    s, r, q = 100.0, 0.045, 0.01
    k = rng.uniform(30, 250, n)
    t = rng.uniform(1 / 365, 3, n)
    v = rng.uniform(0.03, 2.0, n)
    call = rng.random(n) < 0.5
    price = bsm_price(s, k, t, r, q, v, call)
    # Realistic quotes: worth at least a tenth of a cent, with some time value to invert.
    lower = np.where(
        call, s * np.exp(-q * t) - k * np.exp(-r * t), k * np.exp(-r * t) - s * np.exp(-q * t)
    )
    keep = (price > 1e-3) & (price - np.maximum(lower, 0) > 1e-6 * price)
    res = implied_volatility(price[keep], s, k[keep], t[keep], r, q, call[keep])
    assert (res.status == IVStatus.OK).all()
    repriced = bsm_price(s, k[keep], t[keep], r, q, res.sigma, call[keep])
    rel = np.abs(repriced - price[keep]) / price[keep]
    assert rel.max() < 1e-10
    assert res.relative_error.max() < 1e-10


def test_implied_volatility_recovers_sigma_near_the_money() -> None:
    sigma = np.array([0.1, 0.25, 0.6, 1.5])
    price = bsm_price(100.0, 100.0, 0.5, 0.05, 0.0, sigma, True)
    res = implied_volatility(price, 100.0, 100.0, 0.5, 0.05, 0.0, True)
    np.testing.assert_allclose(res.sigma, sigma, rtol=1e-9)


def test_implied_volatility_reports_why_not() -> None:
    s, r, q = 100.0, 0.05, 0.0
    res = implied_volatility(
        price=[5.0, 0.0, 1.0, 19.0, 150.0, 5.0],
        spot=s,
        strike=[100.0, 100.0, 100.0, 80.0, 100.0, 100.0],
        t=[0.5, 0.5, 0.0, 0.5, 0.5, 0.5],
        rate=r,
        dividend_yield=q,
        is_call=True,
        bid=[4.9, 0.0, 1.0, 18.9, 149.0, 0.0],
    )
    assert res.status.tolist() == [
        IVStatus.OK,
        IVStatus.NO_BID,
        IVStatus.EXPIRED,
        IVStatus.BELOW_INTRINSIC,  # 19 < 100 - 80 e^{-0.025} = 21.98
        IVStatus.ABOVE_MAXIMUM,  # a call is never worth more than the underlying
        IVStatus.NO_BID,
    ]
    assert math.isnan(res.sigma[1]) and not math.isnan(res.sigma[0])


def test_analyze_chain_greeks_only_where_iv_found() -> None:
    strike = np.array([90.0, 100.0, 110.0, 100.0])
    t = np.array([0.25, 0.25, 0.25, 0.25])
    call = np.array([True, True, True, False])
    bid = np.array([11.0, 4.0, 0.0, 2.8])
    ask = np.array([11.2, 4.1, 0.05, 2.9])
    out = analyze_chain(100.0, 0.04, 0.0, strike, t, call, bid, ask, ask)
    assert out.status.tolist() == [
        IVStatus.OK,
        IVStatus.OK,
        IVStatus.NO_BID,
        IVStatus.OK,
    ]
    np.testing.assert_allclose(out.mark, (bid + ask) / 2)
    assert math.isnan(out.greeks.delta[2]) and out.implied_volatility[2] == 0.0
    assert out.in_the_money.tolist() == [True, False, False, False]
    # Every OK contract's IV reproduces its mark.
    ok = out.status == IVStatus.OK
    repriced = bsm_price(100.0, strike[ok], t[ok], 0.04, 0.0, out.implied_volatility[ok], call[ok])
    np.testing.assert_allclose(repriced, out.mark[ok], rtol=1e-10)


def test_analyze_chain_greeks_are_bsm_greeks_bit_for_bit() -> None:
    # The chain reuses the solver's terms for the Greeks; a client recomputing them with
    # bsm_greeks from the returned IV must get the same numbers (theta of deep ITM options is
    # a small difference of large terms, so anything but the same operations would show).
    rng = np.random.default_rng(3)
    n = 3000
    s, r, q = 190.0, 0.045, 0.005
    k = rng.uniform(60, 400, n)
    t = rng.choice([1 / 365, 0.03, 0.25, 1.0, 2.5], n)
    call = rng.random(n) < 0.5
    price = np.round(bsm_price(s, k, t, r, q, rng.uniform(0.1, 1.2, n), call), 2)
    out = analyze_chain(s, r, q, k, t, call, price - 0.01, price + 0.01, price)
    ok = out.status == IVStatus.OK
    assert ok.sum() > 0.5 * n
    g = bsm_greeks(s, k[ok], t[ok], r, q, out.implied_volatility[ok], call[ok])
    for name in ("delta", "gamma", "theta", "vega", "rho"):
        np.testing.assert_array_equal(getattr(out.greeks, name)[ok], getattr(g, name))
        assert np.isnan(getattr(out.greeks, name)[~ok]).all()
    repriced = bsm_price(s, k[ok], t[ok], r, q, out.implied_volatility[ok], call[ok])
    np.testing.assert_array_less(np.abs(repriced - out.mark[ok]) / out.mark[ok], 1e-10)
    np.testing.assert_array_equal(
        np.abs(repriced - out.mark[ok]) / out.mark[ok], out.relative_error[ok]
    )


def test_implied_volatility_far_wings_and_scalar_inputs() -> None:
    # Beyond the start's table (|ln F/K| > 4) and at extreme volatilities the first step is
    # not enough: the remaining steps (or Brent) must still reach the tolerance.
    k = np.array([2.0, 5000.0, 100.0, 100.0, 100.0])
    t = np.array([0.5, 2.0, 1 / 365, 3.0, 0.5])
    v = np.array([3.0, 4.0, 0.02, 0.01, 9.0])
    call = np.array([False, True, True, False, True])
    price = bsm_price(100.0, k, t, 0.03, 0.0, v, call)
    res = implied_volatility(price, 100.0, k, t, 0.03, 0.0, call)
    assert (res.status == IVStatus.OK).all()
    np.testing.assert_allclose(res.sigma, v, rtol=1e-6)
    assert res.relative_error.max() < 1e-10
    # Every input a scalar: one contract, and an expired scalar time applies to all.
    one = implied_volatility(price[2], 100.0, 100.0, 1 / 365, 0.03, 0.0, True)
    assert one.status == IVStatus.OK and abs(float(one.sigma) - 0.02) < 1e-9
    expired = implied_volatility([1.0, 2.0], 100.0, [90.0, 110.0], 0.0, 0.03, 0.0, True)
    assert expired.status.tolist() == [IVStatus.EXPIRED, IVStatus.EXPIRED]


def test_a_sorted_chain_shares_terms_without_changing_a_bit() -> None:
    # analyze_chain reuses an expiration's and a strike's terms between neighbours (and
    # processes the chain in passes); the general solver computes every contract on its own.
    # Both must give the same bits.
    rng = np.random.default_rng(5)
    s, r, q = 190.0, 0.045, 0.005
    expiries = np.repeat([2 / 365, 0.1, 0.5, 1.5], 250)
    strikes = np.tile(np.repeat(np.linspace(120, 260, 125), 2), 4)
    call = np.tile([True, False], 500)
    price = np.round(bsm_price(s, strikes, expiries, r, q, rng.uniform(0.15, 0.9, 1000), call), 2)
    bid, ask = np.maximum(price - 0.01, 0.0), price + 0.01
    chain = analyze_chain(s, r, q, strikes, expiries, call, bid, ask, price)
    alone = implied_volatility(chain.mark, s, strikes, expiries, r, q, call, bid=bid)
    assert (chain.status == IVStatus.OK).sum() > 800
    np.testing.assert_array_equal(chain.status, alone.status)
    ok = alone.status == IVStatus.OK
    np.testing.assert_array_equal(chain.implied_volatility[ok], alone.sigma[ok])
    np.testing.assert_array_equal(chain.relative_error, alone.relative_error)
    g = bsm_greeks(s, strikes[ok], expiries[ok], r, q, alone.sigma[ok], call[ok])
    np.testing.assert_array_equal(chain.greeks.theta[ok], g.theta)
