"""A ServiceModule for a service whose contract has landed but whose behaviour has not."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from optix_server.infra.module import ServiceModule


def unimplemented_module(
    name: str,
    full_name: str,
    servicer_class: type[Any],
    add_to_server: Callable[[Any, grpc.aio.Server], None],
) -> ServiceModule:
    """Host the generated base servicer class: every RPC answers UNIMPLEMENTED with a clear message
    (ErrorMappingInterceptor turns its NotImplementedError into the status)."""
    return ServiceModule(
        name=name,
        full_name=full_name,
        register=lambda server: add_to_server(servicer_class(), server),
    )
