"""Wires the watchlist slice: until its behaviour lands, every RPC answers UNIMPLEMENTED."""

from __future__ import annotations

from optix.watchlist.v1 import watchlist_service_pb2_grpc
from optix_server.infra.module import Dependencies, ServiceModule
from optix_server.infra.unimplemented import unimplemented_module

FULL_NAME = "optix.watchlist.v1.WatchlistService"


def create_module(deps: Dependencies) -> ServiceModule:
    """The watchlist ServiceModule (contract only for now)."""
    del deps
    return unimplemented_module(
        "watchlist",
        FULL_NAME,
        watchlist_service_pb2_grpc.WatchlistServiceServicer,
        watchlist_service_pb2_grpc.add_WatchlistServiceServicer_to_server,
    )
