"""WatchlistService over gRPC: proto -> domain call -> proto, nothing else."""

from __future__ import annotations

from typing import Any

import grpc

from optix.watchlist.v1 import watchlist_service_pb2 as pb
from optix.watchlist.v1 import watchlist_service_pb2_grpc
from optix_server.infra.auth.principal import current_user_id
from optix_server.infra.clients import deadline_from
from optix_server.watchlist import convert
from optix_server.watchlist.service import WatchlistService, WatchlistUpdate

Context = grpc.aio.ServicerContext[Any, Any]


class WatchlistServicer(watchlist_service_pb2_grpc.WatchlistServiceServicer):
    """The gRPC face of WatchlistService."""

    def __init__(self, service: WatchlistService, messages: convert.WatchlistMessages) -> None:
        self._service = service
        self._messages = messages

    async def ListWatchlists(
        self, request: pb.ListWatchlistsRequest, context: Context
    ) -> pb.ListWatchlistsResponse:
        """See the proto."""
        page = await self._service.list_watchlists(
            current_user_id(),
            request.parent,
            size=request.page_size,
            page_token=request.page_token,
            view=convert.view(request.view),
            budget_s=deadline_from(context),
        )
        response = pb.ListWatchlistsResponse(
            next_page_token=page.next_page_token, quotes_unavailable=page.quotes_unavailable
        )
        for value in page.watchlists:
            self._messages.fill(response.watchlists.add(), value, page.quotes)
        return response

    async def GetWatchlist(
        self, request: pb.GetWatchlistRequest, context: Context
    ) -> pb.GetWatchlistResponse:
        """See the proto."""
        read = await self._service.get(
            current_user_id(),
            request.name,
            view=convert.view(request.view),
            budget_s=deadline_from(context),
        )
        response = pb.GetWatchlistResponse(quotes_unavailable=read.quotes_unavailable)
        self._messages.fill(response.watchlist, read.watchlists[0], read.quotes)
        return response

    async def CreateWatchlist(
        self, request: pb.CreateWatchlistRequest, context: Context
    ) -> pb.CreateWatchlistResponse:
        """See the proto."""
        created = await self._service.create(
            current_user_id(),
            request.parent,
            display_name=request.watchlist.display_name,
            item_symbols=[item.symbol for item in request.watchlist.items],
            request_id=request.request_id,
            budget_s=deadline_from(context),
        )
        return pb.CreateWatchlistResponse(watchlist=self._messages.message(created))

    async def UpdateWatchlist(
        self, request: pb.UpdateWatchlistRequest, context: Context
    ) -> pb.UpdateWatchlistResponse:
        """See the proto."""
        given = request.watchlist
        updated = await self._service.update(
            current_user_id(),
            WatchlistUpdate(
                name=given.name,
                paths=list(request.update_mask.paths),
                display_name=given.display_name,
                item_symbols=[item.symbol for item in given.items],
                is_default=given.is_default,
                etag=given.etag,
            ),
            budget_s=deadline_from(context),
        )
        return pb.UpdateWatchlistResponse(watchlist=self._messages.message(updated))

    async def DeleteWatchlist(
        self, request: pb.DeleteWatchlistRequest, context: Context
    ) -> pb.DeleteWatchlistResponse:
        """See the proto."""
        await self._service.delete(current_user_id(), request.name, etag=request.etag)
        return pb.DeleteWatchlistResponse()

    async def AddSymbols(
        self, request: pb.AddSymbolsRequest, context: Context
    ) -> pb.AddSymbolsResponse:
        """See the proto."""
        changed = await self._service.add_symbols(
            current_user_id(),
            request.name,
            symbols=list(request.symbols),
            index=request.index if request.HasField("index") else None,
            etag=request.etag,
            budget_s=deadline_from(context),
        )
        return pb.AddSymbolsResponse(watchlist=self._messages.message(changed))

    async def RemoveSymbols(
        self, request: pb.RemoveSymbolsRequest, context: Context
    ) -> pb.RemoveSymbolsResponse:
        """See the proto."""
        changed = await self._service.remove_symbols(
            current_user_id(), request.name, symbols=list(request.symbols), etag=request.etag
        )
        return pb.RemoveSymbolsResponse(watchlist=self._messages.message(changed))

    async def MoveSymbol(
        self, request: pb.MoveSymbolRequest, context: Context
    ) -> pb.MoveSymbolResponse:
        """See the proto."""
        changed = await self._service.move_symbol(
            current_user_id(),
            request.name,
            symbol=request.symbol,
            index=request.index,
            etag=request.etag,
        )
        return pb.MoveSymbolResponse(watchlist=self._messages.message(changed))
