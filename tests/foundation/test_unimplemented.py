"""Contract-only services answer UNIMPLEMENTED with a message naming the method."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from optix.watchlist.v1 import watchlist_service_pb2_grpc
from optix_server.infra.app import OptixServer, build_dependencies, close_dependencies
from optix_server.infra.db import migrate
from optix_server.infra.module import Dependencies, ServiceModule
from optix_server.infra.unimplemented import unimplemented_module
from tests.support.backends import fresh_database_url
from tests.support.server import make_settings, service_metadata


def _watchlist_contract_only(deps: Dependencies) -> ServiceModule:
    del deps
    return unimplemented_module(
        "watchlist",
        "optix.watchlist.v1.WatchlistService",
        watchlist_service_pb2_grpc.WatchlistServiceServicer,
        watchlist_service_pb2_grpc.add_WatchlistServiceServicer_to_server,
    )


async def test_contract_only_rpc_names_itself_in_unimplemented(tmp_path: Path) -> None:
    async with fresh_database_url("sqlite", tmp_path) as url:
        deps = build_dependencies(make_settings(url, tmp_path))
        await migrate(deps.database)
        server = OptixServer(deps, [_watchlist_contract_only(deps)])
        port = await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
                    "/optix.watchlist.v1.WatchlistService/ListWatchlists",
                    request_serializer=None,
                    response_deserializer=None,
                )
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await call(b"", timeout=5, metadata=service_metadata(deps))
        finally:
            await server.stop(0)
            await close_dependencies(deps)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "WatchlistService/ListWatchlists is not implemented yet" in (info.value.details() or "")
