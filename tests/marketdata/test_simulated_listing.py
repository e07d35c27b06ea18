"""The simulated market on the exchange calendar and on the tick: no expirations on exchange
holidays (a holiday Friday's moves to the session before), an expiration gone from listings and
chains once its last session has closed (13:00 on early-close days), and every price a whole
number of the instrument's ticks."""

from __future__ import annotations

from datetime import date, datetime, time

from optix_server.common.exchange_calendar import us_options_calendar
from optix_server.common.market_time import NEW_YORK
from optix_server.common.price_increments import (
    EQUITY_TICKS,
    PENNY_OPTION_TICKS,
    STANDARD_OPTION_TICKS,
    TickRule,
)
from optix_server.marketdata.models import ExpirationType, OptionMarket
from optix_server.marketdata.providers.simulated import SimulatedProvider
from optix_server.marketdata.providers.universe import SimulatedInstrument
from tests.marketdata.test_simulated import UNIVERSE, make


def new_york(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A New York wall-clock instant."""
    return datetime.combine(day, time(hour, minute, second), NEW_YORK)


async def listed_dates(provider: SimulatedProvider, underlying: str) -> list[date]:
    """The provider's listed expirations of `underlying`."""
    return [e.date for e in await provider.list_expirations(underlying)]


async def chain_dates(provider: SimulatedProvider, underlying: str) -> list[date]:
    """The expirations present in the provider's full chain of `underlying`."""
    chain = await provider.get_chain(underlying, None, None)
    return sorted({m.contract.expiration for m in chain.contracts})


async def test_christmas_and_new_year_weeklies_are_listed_on_the_thursday() -> None:
    provider, _ = make(start=new_york(date(2026, 12, 2), 9, 30))
    expirations = await provider.list_expirations("SPY")
    dates = [e.date for e in expirations]
    assert date(2026, 12, 25) not in dates and date(2027, 1, 1) not in dates
    assert date(2026, 12, 24) in dates and date(2026, 12, 31) in dates
    kinds = {e.date: e.type for e in expirations}
    assert kinds[date(2026, 12, 24)] is ExpirationType.WEEKLY
    # The year's last session is the December quarterly too.
    assert kinds[date(2026, 12, 31)] is ExpirationType.QUARTERLY
    calendar = us_options_calendar()
    assert all(calendar.is_session(d) for d in dates)
    assert await chain_dates(provider, "SPY") == dates
    assert all(c.expiration in dates for c in provider.option_contracts("AAPL"))


async def test_a_good_friday_expiration_moves_to_thursday() -> None:
    provider, _ = make(start=new_york(date(2027, 3, 1), 9, 30))
    dates = await listed_dates(provider, "AAPL")
    assert date(2027, 3, 26) not in dates and date(2027, 3, 25) in dates
    # Juneteenth 2026 is June's third Friday: that monthly is listed on Thursday the 18th.
    june, _ = make(start=new_york(date(2026, 5, 11), 9, 30))
    monthly = {e.date: e.type for e in await june.list_expirations("AAPL")}
    assert monthly[date(2026, 6, 18)] is ExpirationType.STANDARD
    assert date(2026, 6, 19) not in monthly


async def expires_at(day: date, close: time) -> None:
    """The expiration on `day` is listed (and in the chain) a second before `close` New York,
    and gone from both a second after."""
    provider, clock = make(start=new_york(day, 9, 30), tick_rate=1)
    before = datetime.combine(day, close, NEW_YORK).timestamp() - 1
    clock.now = before
    assert day in await listed_dates(provider, "SPY")
    assert day in await chain_dates(provider, "SPY")
    clock.now = before + 2
    assert day not in await listed_dates(provider, "SPY")
    assert day not in await chain_dates(provider, "SPY")
    assert await listed_dates(provider, "SPY") == await chain_dates(provider, "SPY")


async def test_an_expiration_is_gone_after_its_last_sessions_close() -> None:
    await expires_at(date(2027, 3, 25), time(16, 0))  # the Good Friday weekly, on Thursday
    await expires_at(date(2026, 12, 18), time(16, 0))


async def test_on_an_early_close_day_it_is_gone_after_13_00() -> None:
    await expires_at(date(2026, 11, 27), time(13, 0))  # the day after Thanksgiving
    await expires_at(date(2026, 12, 24), time(13, 0))  # Christmas Eve


def off_tick(markets: list[OptionMarket], rule: TickRule) -> list[OptionMarket]:
    """The markets with a bid, ask or last that is not a whole number of ticks."""
    return [
        m
        for m in markets
        if not all(rule.on_tick(p) for p in (m.bid, m.ask, m.last))
        or m.ask < rule.below
        or m.last < rule.below
    ]


async def test_option_prices_are_on_their_classes_tick() -> None:
    universe = (*UNIVERSE, SimulatedInstrument("ZZZZ", 60.0, 0.45))
    provider, clock = make(universe=universe)
    clock.now += 600
    spy = (await provider.get_chain("SPY", None, None)).contracts
    aapl = (await provider.get_chain("AAPL", None, None)).contracts
    other = (await provider.get_chain("ZZZZ", None, None)).contracts
    # SPY quotes in pennies at every price: some asks above 3.00 are not nickels.
    assert off_tick(spy, EQUITY_TICKS) == []
    assert any(m.ask >= 3 and not PENNY_OPTION_TICKS.on_tick(m.ask) for m in spy)
    # A penny-program class: pennies under 3.00, nickels from 3.00.
    assert off_tick(aapl, PENNY_OPTION_TICKS) == []
    assert any(m.ask < 3 and not STANDARD_OPTION_TICKS.on_tick(m.ask) for m in aapl)
    assert any(m.ask >= 3 for m in aapl)
    # Any other class: nickels under 3.00, dimes from 3.00; no offer below a nickel.
    assert off_tick(other, STANDARD_OPTION_TICKS) == []
    assert any(m.ask >= 3 for m in other) and min(m.ask for m in other) == 0.05
    # An option quote is the chain's market.
    pick = aapl[len(aapl) // 3]
    quote = (await provider.get_quotes([pick.contract.format()]))[pick.contract.format()]
    assert (quote.bid, quote.ask, quote.last) == (pick.bid, pick.ask, pick.last)


async def test_equity_quotes_and_their_derived_fields_carry_no_float_noise() -> None:
    provider, clock = make()
    for _ in range(50):
        clock.now += 7.3
        for quote in (await provider.get_quotes(["AAPL", "SPY"])).values():
            prices = (quote.bid, quote.ask, quote.last, quote.open, quote.high, quote.low)
            assert all(EQUITY_TICKS.on_tick(p) for p in (*prices, quote.previous_close))
            assert abs(quote.change * 100 - round(quote.change * 100)) < 1e-9
            assert len(repr(quote.change).partition(".")[2]) <= 2
            assert len(repr(quote.mark).partition(".")[2]) <= 3
            assert len(repr(quote.change_percent).partition(".")[2]) <= 4
