"""Wires the alert slice: until its behaviour lands, every RPC answers UNIMPLEMENTED."""

from __future__ import annotations

from optix.alert.v1 import alert_service_pb2_grpc
from optix_server.infra.module import Dependencies, ServiceModule
from optix_server.infra.unimplemented import unimplemented_module

FULL_NAME = "optix.alert.v1.AlertService"


def create_module(deps: Dependencies) -> ServiceModule:
    """The alert ServiceModule (contract only for now)."""
    del deps
    return unimplemented_module(
        "alert",
        FULL_NAME,
        alert_service_pb2_grpc.AlertServiceServicer,
        alert_service_pb2_grpc.add_AlertServiceServicer_to_server,
    )
