"""Live quotes for the symbols alerts watch, read the way another replica's quote streams read
them: straight off the market data pub/sub topic (common.quote_topic), one subscription per
symbol, with the demand that keeps the feed owner ticking them repeated every third of its
lease. Reading the topic rather than a StreamQuotes call saves a gRPC hop per tick, which is
most of the time between a tick and its alert's firing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from optix.marketdata.v1 import quote_pb2
from optix_server.common.quote_topic import (
    DEMAND_CHANNEL,
    DEMAND_LEASE_SECONDS,
    demand_message,
    quote_channel,
)
from optix_server.infra.logging import get_logger
from optix_server.infra.pubsub import PubSub, listen_resubscribing

log = get_logger(__name__)

RETRY_DELAY = 1.0

QuoteHandler = Callable[[quote_pb2.Quote], None]


class QuoteFeed:
    """Keeps one topic subscription per watched symbol and hands every new quote (its sequence
    above the last one seen) to `on_quote`. A subscription that fails subscribes again."""

    def __init__(
        self,
        pubsub: PubSub,
        on_quote: QuoteHandler,
        *,
        lease_seconds: float = DEMAND_LEASE_SECONDS,
        retry_delay: float = RETRY_DELAY,
    ) -> None:
        self._pubsub = pubsub
        self._on_quote = on_quote
        self._renew_every = lease_seconds / 3
        self._retry_delay = retry_delay
        self._listeners: dict[str, asyncio.Task[None]] = {}
        # Set once each symbol's subscription is active.
        self._listening: dict[str, asyncio.Event] = {}
        self._renewer: asyncio.Task[None] | None = None
        self._pending_demands: set[asyncio.Task[None]] = set()

    @property
    def symbols(self) -> set[str]:
        """The symbols currently watched."""
        return set(self._listeners)

    def watch(self, symbols: set[str]) -> None:
        """Watch exactly `symbols`: symbols already watched keep their subscription."""
        for symbol in set(self._listeners) - symbols:
            self._listeners.pop(symbol).cancel()
            del self._listening[symbol]
        added = sorted(symbols - set(self._listeners))
        for symbol in added:
            self._listening[symbol] = asyncio.Event()
            self._listeners[symbol] = asyncio.create_task(
                self._listen(symbol, self._listening[symbol]), name=f"alert-quotes-{symbol}"
            )
        if added:
            # Ask now, not at the next renewal: a new symbol starts ticking at once.
            self._spawn_demand(added)
        if self._renewer is None and self._listeners:
            self._renewer = asyncio.create_task(self._renew(), name="alert-quote-demand")

    async def until_listening(self) -> None:
        """Wait until every watched symbol's subscription is active (ticks from then on are
        seen)."""
        await asyncio.gather(*(event.wait() for event in self._listening.values()))

    async def stop(self) -> None:
        """End every subscription and the demand renewal."""
        tasks = [*self._listeners.values(), *self._pending_demands]
        if self._renewer is not None:
            tasks.append(self._renewer)
        self._listeners.clear()
        self._listening.clear()
        self._renewer = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _listen(self, symbol: str, listening: asyncio.Event) -> None:
        last_sequence = 0

        def on_payload(payload: bytes) -> None:
            nonlocal last_sequence
            try:
                quote = quote_pb2.Quote.FromString(payload)
            except Exception as exc:
                log.warning("unreadable quote on the market data topic", error=str(exc))
                return
            # Sequences only grow: an older tick (a duplicate publisher, a late message) is
            # not news, and evaluating it would move the engine's prices backwards.
            if quote.sequence <= last_sequence:
                return
            last_sequence = quote.sequence
            try:
                self._on_quote(quote)
            except Exception as exc:
                log.warning("could not evaluate a quote", symbol=symbol, error=str(exc))

        await listen_resubscribing(
            self._pubsub,
            quote_channel(symbol),
            on_payload,
            listening,
            retry_delay=self._retry_delay,
        )

    def _spawn_demand(self, symbols: list[str]) -> None:
        task = asyncio.create_task(self._demand(symbols), name="alert-quote-demand-now")
        # Not awaited by anyone: keep it referenced until done.
        self._pending_demands.add(task)
        task.add_done_callback(self._pending_demands.discard)

    async def _demand(self, symbols: list[str]) -> None:
        try:
            await self._pubsub.publish(DEMAND_CHANNEL, demand_message(symbols))
        except Exception as exc:
            # The next renewal asks again.
            log.warning("could not announce alert quote demand", error=str(exc))

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self._renew_every)
            if self._listeners:
                await self._demand(sorted(self._listeners))
