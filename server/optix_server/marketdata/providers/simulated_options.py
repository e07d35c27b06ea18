"""The simulated option listing (expirations, strikes) and its markets, priced off a smile.

Listings are fixed at the simulation start (strikes around the initial price) like a real
exchange's, while prices follow the live underlying. Implied volatility varies by strike and
expiry, so the served chain recovers a smile rather than one flat number.
"""

from __future__ import annotations

import calendar
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
from numpy.typing import NDArray

from optix_server.common.exchange_calendar import ExchangeCalendar, us_options_calendar
from optix_server.common.occ import OccSymbol, OptionRight
from optix_server.common.price_increments import option_ticks
from optix_server.marketdata.models import Expiration, ExpirationType, OptionMarket
from optix_server.marketdata.pricing.bsm import bsm_price
from optix_server.marketdata.providers.universe import stable_seed
from optix_server.marketdata.timeconv import years_to_expiration

WEEKLY_COUNT = 8
MONTHLY_COUNT = 12
QUARTERLY_MONTHS = (3, 6, 9, 12)


def third_friday(year: int, month: int) -> date:
    """The standard monthly expiration's nominal date: the month's third Friday."""
    first = date(year, month, 1)
    offset = (calendar.FRIDAY - first.weekday()) % 7
    return first + timedelta(days=offset + 14)


def month_end(year: int, month: int) -> date:
    """The month's last calendar day (quarterly expirations: its last session)."""
    return date(year, month, calendar.monthrange(year, month)[1])


def _add_months(year: int, month: int, n: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + n
    return index // 12, index % 12 + 1


def list_expirations(today: date, market_calendar: ExchangeCalendar) -> list[Expiration]:
    """Weeklies for 8 weeks, third-Friday monthlies for a year, quarter-ends for a year, each
    on the exchange's calendar: a holiday Friday's expiration is listed the session before."""
    found: dict[date, ExpirationType] = {}
    listed = market_calendar.listed_expiration
    for i in range(MONTHLY_COUNT + 1):
        y, m = _add_months(today.year, today.month, i)
        monthly = listed(third_friday(y, m))
        if monthly >= today:
            found[monthly] = ExpirationType.STANDARD
        if m in QUARTERLY_MONTHS:
            quarter_end = listed(month_end(y, m))
            if quarter_end >= today:
                found.setdefault(quarter_end, ExpirationType.QUARTERLY)
    friday = today + timedelta(days=(calendar.FRIDAY - today.weekday()) % 7)
    for i in range(WEEKLY_COUNT):
        weekly = listed(friday + timedelta(weeks=i))
        if weekly >= today:
            found.setdefault(weekly, ExpirationType.WEEKLY)
    horizon = today + timedelta(days=400)
    return [Expiration(d, t) for d, t in sorted(found.items()) if d <= horizon]


def strike_step(price: float) -> float:
    """Listed strike spacing for an underlying price, like the exchanges' tiers."""
    for limit, step in ((25.0, 0.5), (50.0, 1.0), (200.0, 2.5), (500.0, 5.0)):
        if price < limit:
            return step
    return 10.0


def list_strikes(reference_price: float, days: int) -> list[float]:
    """Strikes around the listing reference price; wider for longer expirations."""
    step = strike_step(reference_price)
    width = 0.3 if days <= 60 else 0.5
    lo = max(step, math.floor(reference_price * (1 - width) / step) * step)
    hi = math.ceil(reference_price * (1 + width) / step) * step
    count = round((hi - lo) / step) + 1
    return [round(lo + i * step, 3) for i in range(count)]


def smile_volatility(
    base_vol: float, spot: float, strike: NDArray[np.float64], t: NDArray[np.float64], carry: float
) -> NDArray[np.float64]:
    """A skewed smile: higher volatility for low strikes, a mild wing lift and term slope."""
    t_pos = np.maximum(t, 1.0 / 365.0)
    forward = spot * np.exp(carry * t_pos)
    m = np.log(strike / forward) / (base_vol * np.sqrt(t_pos))
    term = 1.0 + 0.15 * np.exp(-4.0 * t_pos)
    smile = base_vol * term * (1.0 - 0.08 * m + 0.02 * m * m)
    return np.clip(smile, 0.3 * base_vol, 3.0 * base_vol)  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class OptionListing:
    """The fixed contracts of one underlying, as parallel arrays for vectorised pricing."""

    underlying: str
    contracts: list[OccSymbol]
    strike: NDArray[np.float64]
    is_call: NDArray[np.bool_]
    expiration: list[date]
    open_interest: NDArray[np.int64]
    volume: NDArray[np.int64]


def build_listing(
    underlying: str,
    reference_price: float,
    today: date,
    seed: int,
    market_calendar: ExchangeCalendar | None = None,
) -> OptionListing:
    """Every contract of an underlying ordered by expiration, strike, call before put (on the
    US options calendar unless told otherwise)."""
    contracts: list[OccSymbol] = []
    for exp in list_expirations(today, market_calendar or us_options_calendar()):
        days = (exp.date - today).days
        for k in list_strikes(reference_price, days):
            for right in (OptionRight.CALL, OptionRight.PUT):
                contracts.append(OccSymbol.build(underlying, exp.date, right, k))
    strike = np.array([c.strike for c in contracts])
    rng = np.random.Generator(np.random.PCG64(stable_seed(seed, underlying, "listing")))
    days_left = np.array([(c.expiration - today).days for c in contracts], dtype=np.float64)
    closeness = np.exp(-4.0 * np.abs(np.log(strike / reference_price)))
    oi = (
        5000 * closeness * np.exp(-days_left / 180) * rng.uniform(0.5, 1.5, len(contracts))
    ).astype(np.int64)
    volume = (oi * rng.uniform(0.0, 0.3, len(contracts))).astype(np.int64)
    return OptionListing(
        underlying=underlying,
        contracts=contracts,
        strike=strike,
        is_call=np.array([c.right is OptionRight.CALL for c in contracts]),
        expiration=[c.expiration for c in contracts],
        open_interest=oi,
        volume=volume,
    )


def price_markets(
    listing: OptionListing,
    index: NDArray[np.intp],
    spot: float,
    base_vol: float,
    rate: float,
    dividend_yield: float,
    now: datetime,
) -> list[OptionMarket]:
    """Quotes for the listed contracts at `index`: theoretical smile price, bid and ask around
    it on the class's tick (bid down, ask up), no bid for contracts worth less than two cents."""
    if index.size == 0:
        return []
    exp_t = {d: years_to_expiration(d, now) for d in {listing.expiration[i] for i in index}}
    t = np.array([exp_t[listing.expiration[i]] for i in index])
    k = listing.strike[index]
    call = listing.is_call[index]
    live = t > 0
    t_live = np.where(live, t, 1.0)
    sigma = smile_volatility(base_vol, spot, k, t_live, rate - dividend_yield)
    theo = bsm_price(spot, k, t_live, rate, dividend_yield, sigma, call)
    intrinsic = np.where(call, np.maximum(spot - k, 0.0), np.maximum(k - spot, 0.0))
    theo = np.where(live, theo, intrinsic)
    half = np.maximum(0.005, 0.015 * theo)
    ticks = option_ticks(listing.underlying)
    bid = ticks.floor_array(theo - half)
    bid = np.where(theo < 0.02, 0.0, np.maximum(bid, 0.0))
    # Nothing offers or trades below one tick (a nickel in a nickel class).
    least = ticks.below
    ask = np.maximum(ticks.ceil_array(theo + half), least)
    last = np.maximum(ticks.nearest_array(theo), least)
    return [
        OptionMarket(
            contract=listing.contracts[i],
            bid=float(b),
            ask=float(a),
            last=float(lp),
            volume=int(listing.volume[i]),
            open_interest=int(listing.open_interest[i]),
        )
        for i, b, a, lp in zip(
            index.tolist(), bid.tolist(), ask.tolist(), last.tolist(), strict=True
        )
    ]
