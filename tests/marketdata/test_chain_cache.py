"""Chains priced once per underlying per market update and shared: the update cache (single
flight, never an older update after a newer one, bounded memory), the service's use of it
(kernel calls counted through an injected pricer), filters as slices of the shared chain,
the encoded response against the message-by-message reference, and the limits on a request."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import grpc
import numpy as np
import pytest

from optix.common.v1 import instrument_pb2
from optix.marketdata.v1 import marketdata_service_pb2 as pb
from optix_server.common.exchange_calendar import us_options_calendar
from optix_server.common.market_time import NEW_YORK
from optix_server.common.occ import OptionRight
from optix_server.infra.cache import InMemoryCache
from optix_server.infra.errors import InvalidArgument
from optix_server.marketdata.config import MarketDataSettings
from optix_server.marketdata.convert import chain_to_proto
from optix_server.marketdata.models import ChainFilter, ContractSide, PricedOption
from optix_server.marketdata.priced_chain import price_chain
from optix_server.marketdata.pricing import ChainAnalytics, analyze_chain
from optix_server.marketdata.pricing.bsm import FloatArray
from optix_server.marketdata.providers.replay import ReplayProvider
from optix_server.marketdata.providers.simulated import SimulatedProvider
from optix_server.marketdata.providers.universe import SimulatedInstrument
from optix_server.marketdata.service import MarketDataService
from optix_server.marketdata.shared_chain import ChainSelection
from optix_server.marketdata.timeconv import years_to_expiration
from optix_server.marketdata.update_cache import UpdateCache
from tests.marketdata.harness import MarketDataHarness, marketdata_server
from tests.support.errors import violated_fields

TICK_RATE = 2.0
START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # a Monday, markets open


# --- the update cache on its own -------------------------------------------------------------


@dataclass
class Gate:
    """A computation that waits until released and counts its calls."""

    value: str
    released: asyncio.Event = field(default_factory=asyncio.Event)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    calls: int = 0
    error: Exception | None = None

    async def __call__(self) -> str:
        self.calls += 1
        self.started.set()
        await self.released.wait()
        if self.error is not None:
            raise self.error
        return self.value


def sized(max_bytes: int = 1000) -> UpdateCache[str]:
    return UpdateCache(max_bytes, len)


async def test_concurrent_requests_of_one_update_compute_once() -> None:
    cache = sized()
    gate = Gate("v1")
    waiters = [asyncio.create_task(cache.get("QQQ", 1, gate)) for _ in range(5)]
    await asyncio.wait_for(gate.started.wait(), 5)
    assert not any(w.done() for w in waiters)
    gate.released.set()
    assert await asyncio.wait_for(asyncio.gather(*waiters), 5) == ["v1"] * 5
    assert gate.calls == 1
    assert (cache.stats.computed, cache.stats.joined) == (1, 4)
    again = Gate("never")
    assert await cache.get("QQQ", 1, again) == "v1" and again.calls == 0
    assert cache.stats.hits == 1


async def test_a_new_update_recomputes_and_replaces() -> None:
    cache = sized()
    first, second = Gate("v1"), Gate("v2")
    first.released.set()
    second.released.set()
    assert await cache.get("QQQ", 1, first) == "v1"
    assert await cache.get("QQQ", 2, second) == "v2"
    assert (first.calls, second.calls) == (1, 1)
    assert cache.peek("QQQ") == "v2" and len(cache) == 1 and cache.bytes_held == 2


async def test_an_older_update_finishing_late_is_never_served_after_a_newer_one() -> None:
    cache = sized()
    old, new = Gate("old"), Gate("new")
    old_waiter = asyncio.create_task(cache.get("QQQ", 1, old))
    await asyncio.wait_for(old.started.wait(), 5)
    new_waiter = asyncio.create_task(cache.get("QQQ", 2, new))
    await asyncio.wait_for(new.started.wait(), 5)
    # Update 1 finishes while update 2 is still computing: its own waiter gets it (it asked
    # before update 2 existed) but it is not kept, so update 2's requests cannot see it.
    old.released.set()
    assert await asyncio.wait_for(old_waiter, 5) == "old"
    assert cache.peek("QQQ") is None
    joiner = asyncio.create_task(cache.get("QQQ", 2, Gate("unused")))
    new.released.set()
    assert list(await asyncio.wait_for(asyncio.gather(new_waiter, joiner), 5)) == ["new", "new"]
    assert cache.peek("QQQ") == "new"


async def test_an_older_update_finishing_after_a_newer_one_does_not_overwrite_it() -> None:
    cache = sized()
    old, new = Gate("old"), Gate("new")
    old_waiter = asyncio.create_task(cache.get("QQQ", 1, old))
    await asyncio.wait_for(old.started.wait(), 5)
    new.released.set()
    assert await cache.get("QQQ", 2, new) == "new"
    old.released.set()
    assert await asyncio.wait_for(old_waiter, 5) == "old"
    assert cache.peek("QQQ") == "new"
    assert await cache.get("QQQ", 2, Gate("unused")) == "new"
    # A request that read an older update after the newer one was stored gets the newer one.
    assert await cache.get("QQQ", 1, Gate("unused")) == "new"


async def test_stays_within_its_memory_bound_evicting_the_least_recently_used() -> None:
    cache = sized(max_bytes=10)
    for key, value in (("A", "aaaa"), ("B", "bbbb")):
        gate = Gate(value)
        gate.released.set()
        await cache.get(key, 1, gate)
    hit = Gate("unused")
    await cache.get("A", 1, hit)  # A is now the most recently used
    gate = Gate("cccc")
    gate.released.set()
    await cache.get("C", 1, gate)
    assert cache.bytes_held <= 10
    assert (cache.peek("A"), cache.peek("B"), cache.peek("C")) == ("aaaa", None, "cccc")
    assert cache.stats.evicted == 1
    # A value larger than the whole bound is answered but not kept.
    big = Gate("x" * 11)
    big.released.set()
    assert await cache.get("D", 1, big) == "x" * 11
    assert cache.peek("D") is None and cache.bytes_held <= 10


async def test_a_failure_reaches_every_waiter_and_is_not_kept() -> None:
    cache = sized()
    failing = Gate("never")
    failing.error = RuntimeError("source down")
    waiters = [asyncio.create_task(cache.get("QQQ", 1, failing)) for _ in range(3)]
    await asyncio.wait_for(failing.started.wait(), 5)
    failing.released.set()
    results = await asyncio.wait_for(asyncio.gather(*waiters, return_exceptions=True), 5)
    assert all(isinstance(r, RuntimeError) for r in results) and failing.calls == 1
    retry = Gate("v1")
    retry.released.set()
    assert await cache.get("QQQ", 1, retry) == "v1" and retry.calls == 1


async def test_a_caller_that_gives_up_leaves_the_computation_to_the_others() -> None:
    cache = sized()
    gate = Gate("v1")
    leaving = asyncio.create_task(cache.get("QQQ", 1, gate))
    staying = asyncio.create_task(cache.get("QQQ", 1, gate))
    await asyncio.wait_for(gate.started.wait(), 5)
    leaving.cancel()
    gate.released.set()
    assert await asyncio.wait_for(staying, 5) == "v1"
    assert leaving.cancelled() and gate.calls == 1 and cache.peek("QQQ") == "v1"


async def test_without_a_version_every_request_computes() -> None:
    cache = sized()
    gate = Gate("v")
    gate.released.set()
    await cache.get("QQQ", None, gate)
    await cache.get("QQQ", None, gate)
    assert gate.calls == 2 and cache.peek("QQQ") is None


# --- the service on a simulated market with a manual clock -----------------------------------


@dataclass
class CountingPricer:
    """analyze_chain, counting its calls."""

    calls: int = 0

    def __call__(
        self,
        spot: float,
        rate: float,
        dividend_yield: float,
        strike: FloatArray,
        t: FloatArray,
        is_call: np.ndarray,
        bid: FloatArray,
        ask: FloatArray,
        last: FloatArray,
    ) -> ChainAnalytics:
        self.calls += 1
        return analyze_chain(spot, rate, dividend_yield, strike, t, is_call, bid, ask, last)


@dataclass
class Market:
    """A simulated market whose clock the test moves, and the service over it."""

    clock: list[float]
    provider: SimulatedProvider
    service: MarketDataService
    pricer: CountingPricer

    def next_update(self) -> None:
        self.clock[0] += 1 / TICK_RATE


def make_market(
    now: datetime | None = None, at: datetime | None = None, **settings: object
) -> Market:
    """The market at `at` (default five minutes after the start); the service's clock is the
    market's unless `now` is given."""
    clock = [(at or START + timedelta(minutes=5)).timestamp()]
    provider = SimulatedProvider(
        [SimulatedInstrument("AAPL", 190.0, 0.28), SimulatedInstrument("MSFT", 410.0, 0.24)],
        seed=7,
        tick_rate=TICK_RATE,
        risk_free_rate=0.045,
        dividend_yields={"AAPL": 0.005},
        start_time=START,
        clock=lambda: clock[0],
    )
    pricer = CountingPricer()
    config = MarketDataSettings(tick_rate=TICK_RATE, **settings)  # type: ignore[arg-type]
    service = MarketDataService(
        provider,
        InMemoryCache(),
        config,
        now=lambda: now or datetime.fromtimestamp(clock[0], UTC),
        pricer=pricer,
    )
    return Market(clock, provider, service, pricer)


async def chain(market: Market, underlying: str = "AAPL", **filters: object) -> ChainSelection:
    args: dict[str, object] = {
        "expiration_start": None,
        "expiration_end": None,
        "strike_min": 0.0,
        "strike_max": 0.0,
        "strike_count": 0,
        "side": ContractSide.BOTH,
    }
    args.update(filters)
    return await market.service.get_options_chain(underlying, **args)  # type: ignore[arg-type]


async def test_two_requests_in_one_update_price_once_and_a_new_update_reprices() -> None:
    market = make_market()
    first = await chain(market)
    second = await chain(market, strike_count=2)
    assert market.pricer.calls == 1
    assert second.shared is first.shared
    market.next_update()
    third = await chain(market)
    assert market.pricer.calls == 2
    assert (
        third.shared.priced.underlying_quote.sequence
        > first.shared.priced.underlying_quote.sequence
    )
    # Each underlying has its own entry.
    await chain(market, "MSFT")
    assert market.pricer.calls == 3


async def test_concurrent_requests_of_one_update_price_once() -> None:
    market = make_market()
    results = await asyncio.gather(*(chain(market, strike_count=k) for k in range(8)))
    assert market.pricer.calls == 1
    assert len({id(r.shared) for r in results}) == 1


async def test_a_request_after_a_new_update_never_gets_the_previous_prices() -> None:
    market = make_market()
    before = await chain(market)
    market.next_update()
    after = await chain(market)
    assert after.shared is not before.shared
    assert after.shared.priced.pricing.pricing_time > before.shared.priced.pricing.pricing_time


async def test_the_service_cache_stays_within_its_memory_bound() -> None:
    one = (await chain(make_market())).shared.nbytes
    market = make_market(chain_cache_bytes=int(one * 1.5))
    await chain(market, "AAPL")
    await chain(market, "MSFT")
    cache = market.service.chains
    assert cache.bytes_held <= int(one * 1.5)
    assert cache.peek("AAPL") is None and cache.peek("MSFT") is not None
    assert cache.stats.evicted == 1


def reference_filter(
    options: list[PricedOption], f: ChainFilter, spot: float
) -> list[PricedOption]:
    """The filters' definition, written contract by contract."""
    chosen = [
        o
        for o in options
        if (f.expiration_start is None or o.contract.expiration >= f.expiration_start)
        and (f.expiration_end is None or o.contract.expiration <= f.expiration_end)
        and (f.strike_min is None or o.contract.strike >= f.strike_min)
        and (f.strike_max is None or o.contract.strike <= f.strike_max)
        and (f.side is ContractSide.BOTH or (f.side is ContractSide.CALLS) == o.contract.is_call)
    ]
    if f.strike_count:
        strikes: dict[date, set[float]] = {}
        for o in chosen:
            strikes.setdefault(o.contract.expiration, set()).add(o.contract.strike)
        keep = {
            e: set(sorted(s, key=lambda k: (abs(k - spot), k))[: f.strike_count])
            for e, s in strikes.items()
        }
        chosen = [o for o in chosen if o.contract.strike in keep[o.contract.expiration]]
    return chosen


async def test_filtered_chains_are_the_full_chain_filtered_and_encode_like_the_reference() -> None:
    market = make_market()
    full = await chain(market)
    options = full.chain().options
    keys = [(o.contract.expiration, o.contract.strike, o.contract.right.value) for o in options]
    assert keys == sorted(keys) and len(options) > 2000
    spot = full.shared.priced.pricing.underlying_price
    expirations = sorted({o.contract.expiration for o in options})
    filters = [
        ChainFilter(),
        ChainFilter(strike_count=3),
        ChainFilter(side=ContractSide.PUTS, strike_min=180.0, strike_max=200.0),
        ChainFilter(expirations[1], expirations[3], strike_count=5, side=ContractSide.CALLS),
        ChainFilter(expirations[-1], None, strike_min=150.0),
        ChainFilter(None, expirations[0], strike_max=185.0, strike_count=2),
    ]
    for f in filters:
        got = await chain(
            market,
            expiration_start=f.expiration_start,
            expiration_end=f.expiration_end,
            strike_min=f.strike_min or 0.0,
            strike_max=f.strike_max or 0.0,
            strike_count=f.strike_count,
            side=f.side,
        )
        expected = reference_filter(options, f, spot)
        assert got.chain().options == expected, f
        assert expected, f
        # The served bytes are exactly the message built contract by contract.
        reference = pb.GetOptionsChainResponse(chain=chain_to_proto(got.chain()))
        assert got.response_bytes() == reference.SerializeToString(), f
    assert market.pricer.calls == 1


async def test_slices_are_bit_for_bit_what_pricing_the_slice_alone_gives() -> None:
    market = make_market()
    got = await chain(market, strike_count=4, side=ContractSide.PUTS)
    raw = await market.provider.get_chain("AAPL", None, None)
    when = raw.underlying_quote.quote_time
    wanted = {o.contract for o in got.chain().options}
    alone = sorted(
        (c for c in raw.contracts if c.contract in wanted),
        key=lambda c: (c.contract.expiration, c.contract.strike_thousandths),
    )
    expected = analyze_chain(
        raw.underlying_quote.mark,
        0.045,
        0.005,
        np.array([c.contract.strike for c in alone]),
        np.array([years_to_expiration(c.contract.expiration, when) for c in alone]),
        np.array([c.contract.right is OptionRight.CALL for c in alone]),
        np.array([c.bid for c in alone]),
        np.array([c.ask for c in alone]),
        np.array([c.last for c in alone]),
    )
    served = got.chain().options
    assert [o.contract for o in served] == [c.contract for c in alone]
    np.testing.assert_array_equal(
        [o.implied_volatility for o in served], expected.implied_volatility
    )
    # The served mark is the kernel's, on the decimal grid (see priced_chain.price_chain).
    np.testing.assert_array_equal([o.mark for o in served], np.round(expected.mark, 4))
    assert all(len(repr(o.mark).split(".")[-1]) <= 4 for o in served)
    np.testing.assert_array_equal(
        [o.greeks.delta if o.greeks else np.nan for o in served], expected.greeks.delta
    )
    np.testing.assert_array_equal(
        [o.greeks.theta if o.greeks else np.nan for o in served], expected.greeks.theta
    )


async def test_time_to_expiration_is_measured_from_the_time_the_prices_are_for() -> None:
    # The service's own clock is far from the market's: only the quote time may count.
    market = make_market(now=datetime(2030, 1, 1, tzinfo=UTC))
    got = await chain(market, strike_count=1)
    pricing = got.shared.priced.pricing
    assert pricing.pricing_time == got.shared.priced.underlying_quote.quote_time
    for o in got.chain().options:
        assert o.time_to_expiration_years == years_to_expiration(
            o.contract.expiration, pricing.pricing_time
        )


async def test_an_expiration_leaves_the_chain_once_its_last_session_closed() -> None:
    first = (await chain(make_market())).shared.priced.days[0]

    async def expirations_at(moment: datetime) -> set[date]:
        market = make_market(at=moment)
        got = (await chain(market)).chain()
        assert got.pricing.pricing_time <= moment
        listed, _ = await market.service.list_expirations("AAPL")
        served = {o.contract.expiration for o in got.options}
        assert served == {e.date for e in listed}  # the chain agrees with ListExpirations
        return served

    assert first in await expirations_at(datetime.combine(first, time(15, 59), NEW_YORK))
    assert first not in await expirations_at(datetime.combine(first, time(16, 1), NEW_YORK))


async def test_contracts_whose_last_session_closed_by_the_quote_time_are_not_priced() -> None:
    market = make_market()
    raw = await market.provider.get_chain("AAPL", None, None)
    first = min(c.contract.expiration for c in raw.contracts)
    closed = datetime.combine(first, time(16, 1), NEW_YORK)
    late = dataclasses.replace(
        raw, underlying_quote=dataclasses.replace(raw.underlying_quote, quote_time=closed)
    )
    priced = price_chain(late, 0.045, 0.005, analyze_chain, us_options_calendar().is_listed)
    assert first not in {c.expiration for c in priced.contracts} and first not in priced.days
    assert priced.size == sum(1 for c in raw.contracts if c.contract.expiration != first)
    assert price_chain(
        raw, 0.045, 0.005, analyze_chain, us_options_calendar().is_listed
    ).size == len(raw.contracts)


async def test_filters_selecting_nothing_give_an_empty_chain() -> None:
    market = make_market()
    for filters in (
        {"expiration_start": date(2099, 1, 1)},
        {"strike_min": 10_000.0},
        {"expiration_end": START.date() - timedelta(days=1)},
    ):
        got = await chain(market, **filters)
        assert got.index.size == 0
        decoded = pb.GetOptionsChainResponse.FromString(got.response_bytes()).chain
        assert decoded.underlying == "AAPL" and not decoded.options
        assert decoded.pricing.underlying_price > 0


async def test_more_contracts_than_the_maximum_is_a_field_violation() -> None:
    market = make_market(max_chain_contracts=100)
    with pytest.raises(InvalidArgument) as info:
        await chain(market)
    assert [v.field for v in info.value.violations] == ["expiration_end"]
    assert "more than the 100" in info.value.violations[0].description
    narrow = await chain(market, strike_count=1, side=ContractSide.CALLS)
    assert 0 < narrow.index.size <= 100


async def test_expirations_are_fetched_once_per_update() -> None:
    market = make_market()
    calls = 0
    listed = market.provider.list_expirations

    async def counted(underlying: str) -> list:  # type: ignore[type-arg]
        nonlocal calls
        calls += 1
        return await listed(underlying)

    market.provider.list_expirations = counted  # type: ignore[method-assign]
    first, _ = await market.service.list_expirations("AAPL")
    again, _ = await market.service.list_expirations("aapl")
    assert calls == 1 and first == again and first
    market.next_update()
    await market.service.list_expirations("AAPL")
    assert calls == 2


# --- what a market update is for the replay provider ------------------------------------------


async def test_a_replayed_update_is_a_tick_of_the_underlying_or_its_options(tmp_path: Path) -> None:
    path = tmp_path / "ticks.csv"
    path.write_text(
        "timestamp,symbol,bid,ask,last,volume\n"
        "2026-01-05T15:00:00Z,AAPL,189.90,190.10,190.00,1000\n"
        "2026-01-05T15:00:01Z,AAPL  260116C00190000,3.10,3.30,3.20,5\n"
        "2026-01-05T15:00:02Z,MSFT,409.0,411.0,410.0,100\n"
    )
    provider = ReplayProvider(path, speed=0)
    await provider.start()
    try:
        await asyncio.wait_for(provider.finished.wait(), 10)
        assert provider.market_version("AAPL") == 2  # its own tick and its option's
        assert provider.market_version("MSFT") == 1
        assert provider.market_version("NOPE") == 0
    finally:
        await provider.close()


# --- through the real server ------------------------------------------------------------------


@pytest.fixture
async def md(tmp_path: Path) -> AsyncIterator[MarketDataHarness]:
    settings = MarketDataSettings(tick_rate=TICK_RATE, max_chain_contracts=500)
    async with marketdata_server(tmp_path, settings) as harness:
        yield harness


async def call_chain(md: MarketDataHarness, **fields: object) -> pb.GetOptionsChainResponse:
    request = pb.GetOptionsChainRequest(**fields)  # type: ignore[arg-type]
    reply: pb.GetOptionsChainResponse = await md.stub.GetOptionsChain(request, metadata=md.metadata)
    return reply


async def test_rpc_empty_chain_and_window_over_the_maximum(md: MarketDataHarness) -> None:
    far = instrument_pb2.Date(year=2099, month=1, day=1)
    empty = await call_chain(md, underlying="AAPL", expiration_start=far)
    assert empty.chain.underlying == "AAPL" and len(empty.chain.options) == 0
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call_chain(md, underlying="AAPL")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(info.value) == {"expiration_end"}
    narrow = await call_chain(md, underlying="AAPL", strike_count=2)
    assert 0 < len(narrow.chain.options) <= 500
    assert narrow.chain.pricing.pricing_time == narrow.chain.underlying_quote.quote_time
