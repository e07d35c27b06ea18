"""Watchlist domain values to protobuf messages, and request enums to domain values."""

from __future__ import annotations

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


def watchlist(
    value: Watchlist, quotes: Mapping[str, quote_pb2.Quote] | None = None
) -> watchlist_pb2.Watchlist:
    """The Watchlist message, its items with quotes when given."""
    quotes = quotes or {}
    return watchlist_pb2.Watchlist(
        name=WATCHLISTS.format(value.user_id, value.id),
        display_name=value.display_name,
        items=[
            watchlist_pb2.WatchlistItem(
                symbol=item.symbol,
                instrument=instrument(item.symbol),
                add_time=timestamp(item.add_time),
                quote=quotes.get(item.symbol),
            )
            for item in value.items
        ],
        is_default=value.is_default,
        etag=etag_of(value.id, value.revision),
        create_time=timestamp(value.create_time),
        update_time=timestamp(value.update_time),
    )
