"""Wires the user slice: until its behaviour lands, every RPC answers UNIMPLEMENTED."""

from __future__ import annotations

from optix.user.v1 import user_service_pb2_grpc
from optix_server.infra.module import Dependencies, ServiceModule
from optix_server.infra.unimplemented import unimplemented_module

FULL_NAME = "optix.user.v1.UserService"


def create_module(deps: Dependencies) -> ServiceModule:
    """The user ServiceModule (contract only for now)."""
    del deps
    return unimplemented_module(
        "user",
        FULL_NAME,
        user_service_pb2_grpc.UserServiceServicer,
        user_service_pb2_grpc.add_UserServiceServicer_to_server,
    )
