"""Wires the brokerage slice: until its behaviour lands, every RPC answers UNIMPLEMENTED."""

from __future__ import annotations

from optix.brokerage.v1 import brokerage_service_pb2_grpc
from optix_server.infra.module import Dependencies, ServiceModule
from optix_server.infra.unimplemented import unimplemented_module

FULL_NAME = "optix.brokerage.v1.BrokerageService"


def create_module(deps: Dependencies) -> ServiceModule:
    """The brokerage ServiceModule (contract only for now)."""
    del deps
    return unimplemented_module(
        "brokerage",
        FULL_NAME,
        brokerage_service_pb2_grpc.BrokerageServiceServicer,
        brokerage_service_pb2_grpc.add_BrokerageServiceServicer_to_server,
    )
