"""Watchlist domain values to protobuf messages, and request enums to domain values."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

from optix.marketdata.v1 import quote_pb2
from optix.watchlist.v1 import watchlist_pb2
from optix_server.common.proto_values import instrument, timestamp
from optix_server.infra.aip.etags import etag_of
from optix_server.watchlist.domain import Watchlist
from optix_server.watchlist.service import WATCHLISTS, View


def view(value: watchlist_pb2.WatchlistView.ValueType) -> View:
    """The domain view of a request's `view` (unspecified is BASIC)."""
    return View.WITH_QUOTES if value == watchlist_pb2.WATCHLIST_VIEW_WITH_QUOTES else View.BASIC


def watchlist(value: Watchlist) -> watchlist_pb2.Watchlist:
    """The Watchlist message (items without quotes)."""
    return watchlist_pb2.Watchlist(
        name=WATCHLISTS.format(value.user_id, value.id),
        display_name=value.display_name,
        items=[
            watchlist_pb2.WatchlistItem(
                symbol=item.symbol,
                instrument=instrument(item.symbol),
                add_time=timestamp(item.add_time),
            )
            for item in value.items
        ],
        is_default=value.is_default,
        etag=etag_of(value.id, value.revision),
        create_time=timestamp(value.create_time),
        update_time=timestamp(value.update_time),
    )


class WatchlistMessages:
    """Watchlist messages by (id, revision), built once: a revision's content never changes,
    and building one is ~0.2-0.4 ms for 50 symbols, more than reading it from the database."""

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._messages: OrderedDict[tuple[str, int], watchlist_pb2.Watchlist] = OrderedDict()

    def message(self, value: Watchlist) -> watchlist_pb2.Watchlist:
        """A new Watchlist message for `value`, without quotes."""
        result = watchlist_pb2.Watchlist()
        self.fill(result, value)
        return result

    def fill(
        self,
        target: watchlist_pb2.Watchlist,
        value: Watchlist,
        quotes: Mapping[str, quote_pb2.Quote] | None = None,
    ) -> None:
        """Write `value` into `target` (a response's field: one copy), items with `quotes`."""
        key = (value.id, value.revision)
        built = self._messages.get(key)
        if built is None:
            built = watchlist(value)
            self._messages[key] = built
            if len(self._messages) > self._capacity:
                self._messages.popitem(last=False)
        else:
            self._messages.move_to_end(key)
        target.CopyFrom(built)
        if quotes:
            for item in target.items:
                quote = quotes.get(item.symbol)
                if quote is not None:
                    item.quote.CopyFrom(quote)
