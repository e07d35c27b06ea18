"""Wires the marketdata slice: until its behaviour lands, every RPC answers UNIMPLEMENTED."""

from __future__ import annotations

from optix.marketdata.v1 import marketdata_service_pb2_grpc
from optix_server.infra.module import Dependencies, ServiceModule
from optix_server.infra.unimplemented import unimplemented_module

FULL_NAME = "optix.marketdata.v1.MarketDataService"


def create_module(deps: Dependencies) -> ServiceModule:
    """The marketdata ServiceModule (contract only for now)."""
    del deps
    return unimplemented_module(
        "marketdata",
        FULL_NAME,
        marketdata_service_pb2_grpc.MarketDataServiceServicer,
        marketdata_service_pb2_grpc.add_MarketDataServiceServicer_to_server,
    )
