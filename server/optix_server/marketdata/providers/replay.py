"""The replay provider: plays recorded ticks from a CSV file at real or accelerated speed.

CSV header (extra columns ignored; the last four optional):
``timestamp,symbol,bid,ask,last,volume,bid_size,ask_size,open_interest,previous_close``.
`timestamp` is ISO-8601 or epoch seconds/milliseconds; `volume` is the day's cumulative volume.
Rows may be equities or OCC option symbols; options of an underlying form its chain. Every
quote says DATA_SOURCE_REPLAY and keeps its recorded time.
"""

from __future__ import annotations

import asyncio
import csv
import time
from collections.abc import Awaitable, Callable, Sequence, Set
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np

from optix_server.common.exchange_calendar import ExchangeCalendar, us_options_calendar
from optix_server.common.occ import (
    SymbolError,
    is_option_symbol,
    normalize_symbol,
    parse_occ,
)
from optix_server.common.price_increments import EQUITY_TICKS, TickRule, option_ticks
from optix_server.marketdata.models import (
    BarInterval,
    DataSource,
    Expiration,
    ExpirationType,
    InstrumentType,
    OptionMarket,
    PriceBar,
    Quote,
    RawChain,
)
from optix_server.marketdata.providers.bars import MinuteBars
from optix_server.marketdata.providers.base import QuoteSink, UnknownSymbolError
from optix_server.marketdata.providers.simulated_options import third_friday
from optix_server.marketdata.timeconv import trading_date


class ReplayFileError(ValueError):
    """The replay file is missing or malformed; the message names the line."""


@dataclass(frozen=True, slots=True)
class RecordedTick:
    """One row of the replay file."""

    time: float
    symbol: str
    bid: float
    ask: float
    last: float
    volume: int
    bid_size: int
    ask_size: int
    open_interest: int
    previous_close: float


def _parse_time(raw: str) -> float:
    raw = raw.strip()
    try:
        value = float(raw)
    except ValueError:
        stamp = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        return stamp.timestamp()
    # Epoch milliseconds are the common recording format; seconds are accepted too.
    return value / 1000 if value > 1e11 else value


def load_ticks(path: Path) -> list[RecordedTick]:
    """Read and validate a replay file, ordered by time."""
    try:
        handle = path.open(newline="")
    except OSError as exc:
        raise ReplayFileError(f"cannot open replay file {path}: {exc}") from exc
    ticks: list[RecordedTick] = []
    with handle:
        reader = csv.DictReader(handle)
        required = {"timestamp", "symbol", "bid", "ask", "last", "volume"}
        if reader.fieldnames is None or not required <= set(reader.fieldnames):
            raise ReplayFileError(f"{path}: header must include {', '.join(sorted(required))}")
        for line, row in enumerate(reader, start=2):
            try:
                ticks.append(
                    RecordedTick(
                        time=_parse_time(row["timestamp"]),
                        symbol=normalize_symbol(row["symbol"]),
                        bid=float(row["bid"] or 0),
                        ask=float(row["ask"] or 0),
                        last=float(row["last"] or 0),
                        volume=int(float(row["volume"] or 0)),
                        bid_size=int(float(row.get("bid_size") or 0)),
                        ask_size=int(float(row.get("ask_size") or 0)),
                        open_interest=int(float(row.get("open_interest") or 0)),
                        previous_close=float(row.get("previous_close") or 0),
                    )
                )
            except (ValueError, SymbolError) as exc:
                raise ReplayFileError(f"{path}:{line}: {exc}") from exc
    if not ticks:
        raise ReplayFileError(f"{path}: no ticks")
    ticks.sort(key=lambda t: t.time)
    return ticks


def _tick_rule(symbol: str) -> TickRule:
    """The tick recorded prices are put on (float noise of the recording removed)."""
    return option_ticks(parse_occ(symbol).root) if is_option_symbol(symbol) else EQUITY_TICKS


class _SymbolState:
    def __init__(self) -> None:
        self.quote: Quote | None = None
        self.open_interest = 0
        self.day: date | None = None
        self.open = self.high = self.low = 0.0
        self.last_volume = 0
        self.bars = MinuteBars()


class ReplayProvider:
    """Plays a recorded tick file; `speed` 1 is real time, 10 ten times faster, 0 no waiting."""

    def __init__(
        self,
        path: Path,
        *,
        speed: float = 1.0,
        loop: bool = False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        market_calendar: ExchangeCalendar | None = None,
    ) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self._calendar = market_calendar or us_options_calendar()
        self._path = path
        self._speed = speed
        self._loop = loop
        self._clock = clock
        self._sleep = sleep
        self._ticks: list[RecordedTick] = []
        self._states: dict[str, _SymbolState] = {}
        self._sequence: dict[str, int] = {}
        self._known: set[str] = set()
        # Per underlying: ticks played of it or of its options (its chain's market update).
        self._root_of: dict[str, str] = {}
        self._versions: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._feeds: list[tuple[Set[str], QuoteSink]] = []
        # The recorded time of the newest tick played (loop offset aside): the moment the
        # recording's prices are for, so what has expired by then is no longer listed.
        self._recorded_now: float | None = None
        self.finished = asyncio.Event()
        self.played = 0

    @property
    def source(self) -> DataSource:
        """Always REPLAY."""
        return DataSource.REPLAY

    async def start(self) -> None:
        """Load the file and start playback."""
        self._ticks = await asyncio.to_thread(load_ticks, self._path)
        self._known = {t.symbol for t in self._ticks}
        self._root_of = {s: parse_occ(s).root if is_option_symbol(s) else s for s in self._known}
        self._task = asyncio.create_task(self._play(), name="marketdata-replay")

    async def close(self) -> None:
        """Stop playback."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _play(self) -> None:
        span = self._ticks[-1].time - self._ticks[0].time
        offset = 0.0
        while True:
            wall_start = self._clock()
            first = self._ticks[0].time
            for tick in self._ticks:
                delay = 0.0
                if self._speed > 0:
                    delay = wall_start + (tick.time - first) / self._speed - self._clock()
                if delay > 0:
                    await self._sleep(delay)
                else:
                    # Playing as fast as possible must still let the rest of the loop run.
                    await asyncio.sleep(0)
                quote = self._apply(tick, offset)
                root = self._root_of[tick.symbol]
                self._versions[root] = self._versions.get(root, 0) + 1
                for symbols, sink in list(self._feeds):
                    if quote.symbol in symbols:
                        await sink(quote)
                self.played += 1
            if not self._loop:
                break
            # Recorded times keep increasing across loops so bars and sequences stay ordered.
            offset += span + 1.0
        self.finished.set()

    def _apply(self, tick: RecordedTick, offset: float) -> Quote:
        state = self._states.setdefault(tick.symbol, _SymbolState())
        self._recorded_now = tick.time
        ticks = _tick_rule(tick.symbol)
        bid, ask, last = ticks.nearest(tick.bid), ticks.nearest(tick.ask), ticks.nearest(tick.last)
        stamp = tick.time + offset
        when = datetime.fromtimestamp(stamp, UTC)
        day = trading_date(when)
        if state.day != day:
            state.day, state.open, state.high, state.low = day, last, last, last
            state.last_volume = 0
        state.high = max(state.high, last)
        state.low = min(state.low, last)
        traded = max(0, tick.volume - state.last_volume)
        state.last_volume = tick.volume
        state.bars.record(np.array([stamp]), np.array([last]), np.array([traded], dtype=np.int64))
        state.open_interest = tick.open_interest
        sequence = self._sequence.get(tick.symbol, 0) + 1
        self._sequence[tick.symbol] = sequence
        state.quote = Quote(
            symbol=tick.symbol,
            instrument_type=InstrumentType.OPTION
            if is_option_symbol(tick.symbol)
            else (InstrumentType.INDEX if tick.symbol.startswith("$") else InstrumentType.EQUITY),
            bid=bid,
            ask=ask,
            last=last,
            bid_size=tick.bid_size,
            ask_size=tick.ask_size,
            volume=tick.volume,
            open=state.open,
            high=state.high,
            low=state.low,
            previous_close=ticks.nearest(tick.previous_close),
            quote_time=when,
            source=DataSource.REPLAY,
            sequence=sequence,
        )
        return state.quote

    async def get_quotes(self, symbols: Sequence[str]) -> dict[str, Quote]:
        """Latest played quotes; symbols not played yet are absent."""
        found: dict[str, Quote] = {}
        for symbol in symbols:
            state = self._states.get(symbol)
            if state is not None and state.quote is not None:
                found[symbol] = state.quote
        return found

    def _option_symbols(self, underlying: str) -> list[str]:
        return [s for s in self._known if is_option_symbol(s) and parse_occ(s).root == underlying]

    def _listed(self, expiration: date) -> bool:
        """Whether an expiration still trades at the recording's current moment."""
        if self._recorded_now is None:
            return True
        return self._calendar.is_listed(expiration, datetime.fromtimestamp(self._recorded_now, UTC))

    async def list_expirations(self, underlying: str) -> list[Expiration]:
        """Expirations of the recorded option symbols of `underlying` still trading at the
        recording's current moment."""
        recorded = {parse_occ(s).expiration for s in self._option_symbols(underlying)}
        if not recorded:
            raise UnknownSymbolError(f"the replay file has no options on {underlying}")
        listed = self._calendar.listed_expiration
        return [
            Expiration(
                d,
                ExpirationType.STANDARD
                if d == listed(third_friday(d.year, d.month))
                else ExpirationType.WEEKLY,
            )
            for d in sorted(recorded)
            if self._listed(d)
        ]

    def market_version(self, underlying: str) -> int | None:
        """Ticks played so far of the underlying and its options."""
        return self._versions.get(underlying, 0)

    async def get_chain(
        self, underlying: str, expiration_start: date | None, expiration_end: date | None
    ) -> RawChain:
        """The latest played quote of every recorded contract of `underlying` in range."""
        state = self._states.get(underlying)
        options = self._option_symbols(underlying)
        if state is None or state.quote is None or not options:
            raise UnknownSymbolError(f"no replayed options chain for {underlying} (yet)")
        parsed = [(symbol, parse_occ(symbol)) for symbol in options]
        # Per expiration, not per contract: the calendar is asked a few dozen times, not thousands.
        live = {
            d
            for d in {occ.expiration for _, occ in parsed}
            if (expiration_start is None or d >= expiration_start)
            and (expiration_end is None or d <= expiration_end)
            and self._listed(d)
        }
        contracts: list[OptionMarket] = []
        for symbol, occ in parsed:
            if occ.expiration not in live:
                continue
            option_state = self._states.get(symbol)
            if option_state is None or option_state.quote is None:
                continue
            q = option_state.quote
            contracts.append(
                OptionMarket(occ, q.bid, q.ask, q.last, q.volume, option_state.open_interest)
            )
        return RawChain(underlying, state.quote, contracts, DataSource.REPLAY)

    async def get_price_history(
        self, symbol: str, interval: BarInterval, start: datetime, end: datetime
    ) -> list[PriceBar]:
        """Bars of the ticks played so far."""
        if symbol not in self._known:
            raise UnknownSymbolError(f"{symbol} is not in the replay file")
        state = self._states.get(symbol)
        if state is None:
            return []
        return state.bars.bars(interval, start.timestamp(), end.timestamp())

    async def run_feed(self, symbols: Set[str], sink: QuoteSink) -> None:
        """Receive every played tick of `symbols` until cancelled."""
        entry = (symbols, sink)
        self._feeds.append(entry)
        try:
            await asyncio.Event().wait()
        finally:
            self._feeds.remove(entry)
