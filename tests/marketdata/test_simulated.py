"""The simulated provider: reproducible, labelled, smiles in chains, consistent history."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import numpy as np

from optix_server.common.occ import OptionRight
from optix_server.marketdata.models import BarInterval, DataSource, Quote
from optix_server.marketdata.pricing import IVStatus, analyze_chain
from optix_server.marketdata.providers.simulated import SimulatedProvider
from optix_server.marketdata.providers.universe import SimulatedInstrument
from optix_server.marketdata.timeconv import years_to_expiration

START = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
UNIVERSE = (SimulatedInstrument("AAPL", 190.0, 0.26), SimulatedInstrument("SPY", 540.0, 0.14))


class ManualClock:
    """A wall clock the test moves by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now


def make(
    seed: int = 7,
    clock: ManualClock | None = None,
    *,
    start: datetime = START,
    universe: tuple[SimulatedInstrument, ...] = UNIVERSE,
    tick_rate: float = 10,
) -> tuple[SimulatedProvider, ManualClock]:
    """A simulated market started at `start`, on a clock the test moves."""
    clock = clock or ManualClock(start)
    provider = SimulatedProvider(
        universe,
        seed=seed,
        tick_rate=tick_rate,
        risk_free_rate=0.045,
        dividend_yields={"SPY": 0.013},
        start_time=start,
        clock=clock,
    )
    return provider, clock


async def test_same_seed_same_market_however_it_is_advanced() -> None:
    a, clock_a = make()
    b, clock_b = make()
    # a is read every second, b only at the end: the paths must still agree to the cent.
    for _ in range(60):
        clock_a.now += 1
        await a.get_quotes(["AAPL"])
    clock_b.now += 60
    qa, qb = (await a.get_quotes(["AAPL"]))["AAPL"], (await b.get_quotes(["AAPL"]))["AAPL"]
    assert qa == qb
    assert qa.sequence == 601
    assert qa.source is DataSource.SIMULATED
    other, clock_c = make(seed=8)
    clock_c.now += 60
    assert (await other.get_quotes(["AAPL"]))["AAPL"].last != qa.last


async def test_quotes_are_coherent() -> None:
    provider, clock = make()
    clock.now += 3600
    quotes = await provider.get_quotes(["AAPL", "SPY", "NOPE"])
    assert set(quotes) == {"AAPL", "SPY"}
    for q in quotes.values():
        assert 0 < q.bid < q.ask
        assert q.low <= q.last <= q.high
        assert q.previous_close == next(u.initial_price for u in UNIVERSE if u.symbol == q.symbol)
        assert q.quote_time == START + timedelta(hours=1)


async def test_chain_has_a_smile_and_parity_holds_within_the_spread() -> None:
    provider, clock = make()
    clock.now += 600
    chain = await provider.get_chain("AAPL", None, None)
    assert len(chain.contracts) > 2000
    spot = chain.underlying_quote.mark
    now = chain.underlying_quote.quote_time
    c = chain.contracts
    t = np.array([years_to_expiration(m.contract.expiration, now) for m in c])
    call = np.array([m.contract.right is OptionRight.CALL for m in c])
    strike = np.array([m.contract.strike for m in c])
    bid, ask = np.array([m.bid for m in c]), np.array([m.ask for m in c])
    out = analyze_chain(spot, 0.045, 0.0, strike, t, call, bid, ask, ask)
    ok = out.status == IVStatus.OK
    assert ok.mean() > 0.9
    # IV varies by strike within one expiration: a skew, not one flat number.
    first = c[0].contract.expiration
    same = ok & np.array([m.contract.expiration == first for m in c]) & call
    assert out.implied_volatility[same].max() - out.implied_volatility[same].min() > 0.02
    # Put-call parity on quotes: C_bid - P_ask <= S e^{-qT} - K e^{-rT} <= C_ask - P_bid.
    by_key = {(m.contract.expiration, m.contract.strike, m.contract.right): m for m in c}
    for m in c:
        if m.contract.right is not OptionRight.CALL:
            continue
        put = by_key[(m.contract.expiration, m.contract.strike, OptionRight.PUT)]
        tt = years_to_expiration(m.contract.expiration, now)
        parity = spot - m.contract.strike * np.exp(-0.045 * tt)
        assert m.bid - put.ask <= parity + 1e-9
        assert parity <= m.ask - put.bid + 1e-9


async def test_option_quotes_match_the_chain() -> None:
    provider, clock = make()
    clock.now += 30
    chain = await provider.get_chain("SPY", None, None)
    pick = chain.contracts[len(chain.contracts) // 2]
    quote: Quote = (await provider.get_quotes([pick.contract.format()]))[pick.contract.format()]
    assert (quote.bid, quote.ask) == (pick.bid, pick.ask)
    expirations = await provider.list_expirations("SPY")
    assert [e.date for e in expirations] == sorted({m.contract.expiration for m in chain.contracts})


async def test_price_history_ends_at_the_live_quote() -> None:
    provider, clock = make()
    clock.now += 2 * 3600
    end = datetime.fromtimestamp(clock.now + 1, UTC)
    bars = await provider.get_price_history(
        "AAPL", BarInterval.FIVE_MINUTES, end - timedelta(days=1), end
    )
    quote = (await provider.get_quotes(["AAPL"]))["AAPL"]
    assert bars[-1].close == quote.last
    starts = [b.start_time for b in bars]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    assert all(b.low <= min(b.open, b.close) and b.high >= max(b.open, b.close) for b in bars)
    live = [b for b in bars if b.start_time >= START]
    assert max(b.high for b in live) == quote.high and min(b.low for b in live) == quote.low
    # The same request twice gives the same bars (history is deterministic too).
    again = await provider.get_price_history(
        "AAPL", BarInterval.FIVE_MINUTES, end - timedelta(days=1), end
    )
    assert again == bars


async def test_feed_ticks_only_subscribed_symbols() -> None:
    provider = SimulatedProvider(
        UNIVERSE, seed=1, tick_rate=200, risk_free_rate=0.04, dividend_yields={}
    )
    got: list[Quote] = []
    enough = asyncio.Event()

    async def sink(q: Quote) -> None:
        got.append(q)
        if len(got) >= 10:
            enough.set()

    task = asyncio.create_task(provider.run_feed({"SPY"}, sink))
    try:
        await asyncio.wait_for(enough.wait(), 10)
    finally:
        task.cancel()
    assert {q.symbol for q in got} == {"SPY"}
    seqs = [q.sequence for q in got]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
