"""Live quotes for the symbols alerts watch, read the way any other client reads them: through
the market data service's StreamQuotes, over its typed stub (in this process or another)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

import grpc

from optix.marketdata.v1 import marketdata_service_pb2, quote_pb2
from optix_server.infra.logging import get_logger

if TYPE_CHECKING:
    from optix.marketdata.v1.marketdata_service_pb2_grpc import MarketDataServiceAsyncStub

log = get_logger(__name__)

# Symbols per stream: below the market data service's per-stream limit (500 by default).
CHUNK = 200
RETRY_DELAY = 1.0

QuoteHandler = Callable[[quote_pb2.Quote], None]


class QuoteFeed:
    """Keeps StreamQuotes open for a changing set of symbols, CHUNK per stream, and hands every
    quote to `on_quote`. A stream that ends (token expiry, a market data restart) reopens."""

    def __init__(
        self,
        stub: Callable[[], MarketDataServiceAsyncStub],
        on_quote: QuoteHandler,
        *,
        chunk: int = CHUNK,
        retry_delay: float = RETRY_DELAY,
    ) -> None:
        self._make_stub = stub
        self._stub: MarketDataServiceAsyncStub | None = None
        self._on_quote = on_quote
        self._chunk = chunk
        self._retry_delay = retry_delay
        self._streams: dict[tuple[str, ...], asyncio.Task[None]] = {}

    @property
    def symbols(self) -> set[str]:
        """The symbols currently streamed."""
        return {s for chunk in self._streams for s in chunk}

    def watch(self, symbols: set[str]) -> None:
        """Stream exactly `symbols`: chunks whose symbols are unchanged keep their stream."""
        ordered = sorted(symbols)
        wanted = {tuple(ordered[i : i + self._chunk]) for i in range(0, len(ordered), self._chunk)}
        for chunk in list(self._streams):
            if chunk not in wanted:
                self._streams.pop(chunk).cancel()
        for chunk in wanted - set(self._streams):
            self._streams[chunk] = asyncio.create_task(
                self._run(chunk), name=f"alert-quotes-{chunk[0]}"
            )

    async def stop(self) -> None:
        """Close every stream."""
        tasks = list(self._streams.values())
        self._streams.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, chunk: tuple[str, ...]) -> None:
        if self._stub is None:
            self._stub = self._make_stub()
        request = marketdata_service_pb2.StreamQuotesRequest(symbols=chunk)
        while True:
            call = self._stub.StreamQuotes(request)
            try:
                async for message in call:
                    if message.WhichOneof("payload") == "quotes":
                        for quote in message.quotes.quotes:
                            self._on_quote(quote)
            except asyncio.CancelledError:
                call.cancel()
                raise
            except grpc.aio.AioRpcError as error:
                # UNAVAILABLE at shutdown or restart, UNAUTHENTICATED at token expiry: reopen.
                log.info("alert quote stream ended; reopening", code=error.code().name)
            except Exception as exc:
                log.warning("alert quote stream failed; reopening", error=str(exc))
            with contextlib.suppress(Exception):
                call.cancel()
            await asyncio.sleep(self._retry_delay)
