"""An underlying's whole chain priced once at one market update, kept as parallel arrays in
chain order, and the chain filters as index selections of it (a filtered chain is a slice of
the shared result, never a second pricing)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from optix_server.common.occ import OccSymbol, OptionRight
from optix_server.common.price_increments import PRICE_DECIMALS
from optix_server.marketdata.models import (
    ChainFilter,
    ContractSide,
    DataSource,
    Greeks,
    OptionsChain,
    PricedOption,
    PricingParameters,
    Quote,
    RawChain,
)
from optix_server.marketdata.pricing.bsm import FloatArray
from optix_server.marketdata.pricing.chain import ChainAnalytics
from optix_server.marketdata.timeconv import TIME_CONVENTION, years_to_expiration

MODEL = "black-scholes-merton"
PRICE_BASIS = "mark"

Index = NDArray[np.intp]


class ChainPricer(Protocol):
    """The chain kernel's signature (pricing.analyze_chain); injectable so tests count calls."""

    def __call__(
        self,
        spot: float,
        rate: float,
        dividend_yield: float,
        strike: FloatArray,
        t: FloatArray,
        is_call: NDArray[np.bool_],
        bid: FloatArray,
        ask: FloatArray,
        last: FloatArray,
    ) -> ChainAnalytics:
        """Marks, implied volatilities and Greeks of every contract."""
        ...


@dataclass(frozen=True, slots=True)
class PricedChain:
    """Every contract of one raw chain in chain order (expiration, strike, calls first) with
    its market and model values, priced at the time the raw chain's prices are for."""

    underlying: str
    underlying_quote: Quote
    pricing: PricingParameters
    source: DataSource
    contracts: list[OccSymbol]
    expiration: NDArray[np.int64]  # proleptic Gregorian ordinals, for vectorised windows
    strike: FloatArray
    is_call: NDArray[np.bool_]
    multiplier: NDArray[np.int64]
    bid: FloatArray
    ask: FloatArray
    last: FloatArray
    volume: NDArray[np.int64]
    open_interest: NDArray[np.int64]
    time_to_expiration: FloatArray
    analytics: ChainAnalytics
    days: tuple[date, ...]  # the distinct expirations, soonest first
    # How long the kernel took (of the whole pricing): where a cold chain's time went.
    kernel_seconds: float = field(default=0.0, compare=False)

    @property
    def size(self) -> int:
        """Number of contracts."""
        return len(self.contracts)

    @property
    def nbytes(self) -> int:
        """Approximate memory held (arrays and the contract list; the symbols themselves are
        shared with the provider's listing)."""
        a = self.analytics
        arrays = (
            self.expiration,
            self.strike,
            self.is_call,
            self.multiplier,
            self.bid,
            self.ask,
            self.last,
            self.volume,
            self.open_interest,
            self.time_to_expiration,
            a.mark,
            a.implied_volatility,
            a.status,
            a.relative_error,
            a.in_the_money,
            a.greeks.delta,
            a.greeks.gamma,
            a.greeks.theta,
            a.greeks.vega,
            a.greeks.rho,
        )
        return sum(x.nbytes for x in arrays) + 8 * len(self.contracts)

    def select(self, chain_filter: ChainFilter) -> Index:
        """Indices of the contracts the filters keep, in chain order."""
        f = chain_filter
        keep = np.ones(self.size, dtype=np.bool_)
        if f.expiration_start is not None:
            keep &= self.expiration >= f.expiration_start.toordinal()
        if f.expiration_end is not None:
            keep &= self.expiration <= f.expiration_end.toordinal()
        if f.strike_min is not None:
            keep &= self.strike >= f.strike_min
        if f.strike_max is not None:
            keep &= self.strike <= f.strike_max
        if f.side is not ContractSide.BOTH:
            keep &= self.is_call == (f.side is ContractSide.CALLS)
        if f.strike_count > 0:
            keep &= self._nearest_strikes(keep, f.strike_count)
        return np.flatnonzero(keep)

    def _nearest_strikes(self, chosen: NDArray[np.bool_], count: int) -> NDArray[np.bool_]:
        # Per expiration, among the strikes still chosen: the `count` closest to the
        # underlying price, ties to the lower strike.
        spot = self.pricing.underlying_price
        near = np.zeros(self.size, dtype=np.bool_)
        for expiration in np.unique(self.expiration[chosen]):
            here = chosen & (self.expiration == expiration)
            strikes = np.unique(self.strike[here])
            order = np.lexsort((strikes, np.abs(strikes - spot)))
            near |= here & np.isin(self.strike, strikes[order[:count]])
        return near

    def options(self, index: Index) -> list[PricedOption]:
        """The selected contracts as domain values (Greeks None where no volatility)."""
        a, g = self.analytics, self.analytics.greeks
        columns = zip(
            index.tolist(),
            self.multiplier[index].tolist(),
            self.bid[index].tolist(),
            self.ask[index].tolist(),
            self.last[index].tolist(),
            a.mark[index].tolist(),
            self.volume[index].tolist(),
            self.open_interest[index].tolist(),
            a.implied_volatility[index].tolist(),
            a.status[index].tolist(),
            np.stack([g.delta, g.gamma, g.theta, g.vega, g.rho], axis=1)[index].tolist(),
            self.time_to_expiration[index].tolist(),
            a.in_the_money[index].tolist(),
            strict=True,
        )
        return [
            PricedOption(
                contract=self.contracts[i],
                underlying=self.underlying,
                multiplier=multiplier,
                bid=bid,
                ask=ask,
                last=last,
                mark=mark,
                volume=volume,
                open_interest=oi,
                implied_volatility=iv,
                iv_status=status,
                # NaN Greeks (delta != delta): no implied volatility to compute them at.
                greeks=None if greeks[0] != greeks[0] else Greeks(*greeks),
                time_to_expiration_years=t,
                in_the_money=itm,
            )
            for i, multiplier, bid, ask, last, mark, volume, oi, iv, status, greeks, t, itm in (
                columns
            )
        ]

    def chain(self, index: Index) -> OptionsChain:
        """The selected contracts as a domain chain."""
        return OptionsChain(
            underlying=self.underlying,
            underlying_quote=self.underlying_quote,
            pricing=self.pricing,
            options=self.options(index),
            source=self.source,
        )


def _floats(values: Sequence[float]) -> FloatArray:
    return np.fromiter(values, dtype=np.float64, count=len(values))


def _ints(values: Sequence[int]) -> NDArray[np.int64]:
    return np.fromiter(values, dtype=np.int64, count=len(values))


def _bools(values: Sequence[bool]) -> NDArray[np.bool_]:
    return np.fromiter(values, dtype=np.bool_, count=len(values))


def price_chain(
    raw: RawChain,
    rate: float,
    dividend_yield: float,
    pricer: ChainPricer,
    listed: Callable[[date, datetime], bool] = lambda _day, _when: True,
) -> PricedChain:
    """Order the raw chain, keep the expirations still `listed` at the instant its prices are
    for (the underlying quote's time), measure time to expiration from that instant and price
    every contract in one kernel call."""
    spot = raw.underlying_quote.mark
    when = raw.underlying_quote.quote_time
    markets = raw.contracts
    expiration = _ints([m.contract.expiration.toordinal() for m in markets])
    thousandths = _ints([m.contract.strike_thousandths for m in markets])
    is_put = _bools([m.contract.right is OptionRight.PUT for m in markets])
    order = np.lexsort((is_put, thousandths, expiration))
    gone = [d for d in np.unique(expiration).tolist() if not listed(date.fromordinal(d), when)]
    if gone:
        order = order[~np.isin(expiration[order], gone)]
    ordered = [markets[i] for i in order.tolist()]
    years = {e: years_to_expiration(e, when) for e in {m.contract.expiration for m in ordered}}
    t = _floats([years[m.contract.expiration] for m in ordered])
    strike = thousandths[order] / 1000.0
    is_call = ~is_put[order]
    bid = _floats([m.bid for m in ordered])
    ask = _floats([m.ask for m in ordered])
    last = _floats([m.last for m in ordered])
    kernel_started = time.perf_counter()
    analytics = pricer(spot, rate, dividend_yield, strike, t, is_call, bid, ask, last)
    kernel_seconds = time.perf_counter() - kernel_started
    # The kernel's mark is the exact binary midpoint (44.849999999999994); it is shown on the
    # decimal grid like every derived price. IV and Greeks were solved from the exact value.
    analytics = replace(analytics, mark=np.round(analytics.mark, PRICE_DECIMALS))
    return PricedChain(
        underlying=raw.underlying,
        underlying_quote=raw.underlying_quote,
        pricing=PricingParameters(
            underlying_price=spot,
            risk_free_rate=rate,
            dividend_yield=dividend_yield,
            model=MODEL,
            time_convention=TIME_CONVENTION,
            pricing_time=when,
            price_basis=PRICE_BASIS,
        ),
        source=raw.source,
        contracts=[m.contract for m in ordered],
        expiration=expiration[order],
        strike=strike,
        is_call=is_call,
        multiplier=_ints([m.multiplier for m in ordered]),
        bid=bid,
        ask=ask,
        last=last,
        volume=_ints([m.volume for m in ordered]),
        open_interest=_ints([m.open_interest for m in ordered]),
        time_to_expiration=t,
        analytics=analytics,
        days=tuple(sorted(years)),
        kernel_seconds=kernel_seconds,
    )
