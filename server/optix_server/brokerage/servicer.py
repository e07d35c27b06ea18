"""BrokerageService over gRPC: proto -> domain call -> proto, nothing else."""

from __future__ import annotations

from typing import Any

import grpc

from optix.brokerage.v1 import brokerage_service_pb2 as pb
from optix.brokerage.v1 import brokerage_service_pb2_grpc
from optix_server.brokerage import convert
from optix_server.brokerage.service import BrokerageService, TransactionQueryArgs
from optix_server.brokerage.snapshots import PortfolioSnapshots
from optix_server.common.proto_fields import optional_timestamp
from optix_server.infra.auth.principal import current_user_id
from optix_server.infra.clients import deadline_from
from optix_server.infra.errors import ViolationCollector

Context = grpc.aio.ServicerContext[Any, Any]


class BrokerageServicer(brokerage_service_pb2_grpc.BrokerageServiceServicer):
    """The gRPC face of BrokerageService."""

    def __init__(self, service: BrokerageService, snapshots: PortfolioSnapshots) -> None:
        self._service = service
        self._snapshots = snapshots

    async def ListProviders(
        self, request: pb.ListProvidersRequest, context: Context
    ) -> pb.ListProvidersResponse:
        """See the proto."""
        current_user_id()
        page = self._service.providers(request.page_size, request.page_token)
        return pb.ListProvidersResponse(
            providers=[convert.provider(p) for p in page.items],
            next_page_token=page.next_page_token,
        )

    async def StartConnection(
        self, request: pb.StartConnectionRequest, context: Context
    ) -> pb.StartConnectionResponse:
        """See the proto."""
        started = await self._service.start(
            current_user_id(),
            request.parent,
            provider=request.provider,
            connection=request.connection,
            redirect_uri=request.redirect_uri,
            display_name=request.display_name,
        )
        response = pb.StartConnectionResponse(
            authorize_url=started.authorize_url, state=started.state
        )
        response.expire_time.FromDatetime(started.expire_time)
        return response

    async def CompleteConnection(
        self, request: pb.CompleteConnectionRequest, context: Context
    ) -> pb.CompleteConnectionResponse:
        """See the proto."""
        connection = await self._service.complete(
            current_user_id(), request.parent, code=request.code, state=request.state
        )
        response = pb.CompleteConnectionResponse(connection=convert.connection(connection))
        current = connection.current_sync()
        if current is not None:
            response.sync.CopyFrom(convert.sync(current))
        return response

    async def ListConnections(
        self, request: pb.ListConnectionsRequest, context: Context
    ) -> pb.ListConnectionsResponse:
        """See the proto."""
        page = await self._service.list_connections(
            current_user_id(), request.parent, request.page_size, request.page_token
        )
        return pb.ListConnectionsResponse(
            connections=[convert.connection(c) for c in page.items],
            next_page_token=page.next_page_token,
        )

    async def GetConnection(
        self, request: pb.GetConnectionRequest, context: Context
    ) -> pb.GetConnectionResponse:
        """See the proto."""
        found = await self._service.get(current_user_id(), request.name)
        return pb.GetConnectionResponse(connection=convert.connection(found))

    async def DeleteConnection(
        self, request: pb.DeleteConnectionRequest, context: Context
    ) -> pb.DeleteConnectionResponse:
        """See the proto."""
        await self._service.delete(current_user_id(), request.name)
        return pb.DeleteConnectionResponse()

    async def ListAccounts(
        self, request: pb.ListAccountsRequest, context: Context
    ) -> pb.ListAccountsResponse:
        """See the proto."""
        page = await self._service.list_accounts(
            current_user_id(), request.parent, request.page_size, request.page_token
        )
        return pb.ListAccountsResponse(
            accounts=[convert.account(a) for a in page.items],
            next_page_token=page.next_page_token,
        )

    async def GetPortfolio(
        self, request: pb.GetPortfolioRequest, context: Context
    ) -> pb.GetPortfolioResponse:
        """See the proto. Answers with the user's snapshot, encoded once (see snapshots)."""
        caller, budget_s = current_user_id(), deadline_from(context)
        user_id = self._service.portfolio_owner(caller, request.name)

        async def build() -> bytes:
            view = await self._service.portfolio(caller, request.name, budget_s)
            return pb.GetPortfolioResponse(portfolio=convert.portfolio(view)).SerializeToString()

        # Bytes: registered with a serializer that passes them through.
        return await self._snapshots.get(user_id, build)  # type: ignore[return-value]

    async def ListPositions(
        self, request: pb.ListPositionsRequest, context: Context
    ) -> pb.ListPositionsResponse:
        """See the proto."""
        page = await self._service.positions(
            current_user_id(), request.parent, request.page_size, request.page_token
        )
        return pb.ListPositionsResponse(
            positions=[convert.position(p) for p in page.items],
            next_page_token=page.next_page_token,
        )

    async def ListTransactions(
        self, request: pb.ListTransactionsRequest, context: Context
    ) -> pb.ListTransactionsResponse:
        """See the proto."""
        times = ViolationCollector()
        start = optional_timestamp(
            times, "start_time", request.start_time, request.HasField("start_time")
        )
        end = optional_timestamp(times, "end_time", request.end_time, request.HasField("end_time"))
        page = await self._service.transactions(
            current_user_id(),
            request.parent,
            request.page_size,
            request.page_token,
            TransactionQueryArgs(
                start=start,
                end=end,
                types=list(request.types),
                symbol=request.symbol,
                violations=tuple(times.violations),
            ),
        )
        return pb.ListTransactionsResponse(
            transactions=[convert.transaction(t) for t in page.items],
            next_page_token=page.next_page_token,
        )

    async def SyncPortfolio(
        self, request: pb.SyncPortfolioRequest, context: Context
    ) -> pb.SyncPortfolioResponse:
        """See the proto."""
        syncs = await self._service.sync(current_user_id(), request.connection)
        return pb.SyncPortfolioResponse(syncs=[convert.sync(s) for s in syncs])
