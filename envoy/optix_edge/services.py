"""What the edge routes: each service's gRPC name and its server-streaming methods, from gen/."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from google.protobuf.descriptor import FileDescriptor


@dataclass(frozen=True)
class RoutedService:
    """One service package as the edge sees it."""

    short_name: str
    # Full gRPC service names, e.g. optix.user.v1.UserService (empty until gen/ has them).
    grpc_services: tuple[str, ...]
    # Full paths (/pkg.Service/Method) of server-streaming RPCs: they get no route deadline.
    streaming_paths: tuple[str, ...]

    @property
    def package(self) -> str:
        """The proto package, optix.<name>.v1."""
        return f"optix.{self.short_name}.v1"


def _service_file(short_name: str) -> FileDescriptor | None:
    """The generated `<svc>_service.proto` descriptor; None before the contract exists."""
    try:
        module = importlib.import_module(f"optix.{short_name}.v1.{short_name}_service_pb2")
    except ModuleNotFoundError:
        return None
    descriptor: FileDescriptor = module.DESCRIPTOR
    return descriptor


def discover(short_name: str) -> RoutedService:
    """Describe one service package from its generated descriptors."""
    file = _service_file(short_name)
    if file is None:
        return RoutedService(short_name, (), ())
    names: list[str] = []
    streaming: list[str] = []
    for service in file.services_by_name.values():
        names.append(service.full_name)
        streaming.extend(
            f"/{service.full_name}/{method.name}"
            for method in service.methods
            if method.server_streaming or method.client_streaming
        )
    return RoutedService(short_name, tuple(sorted(names)), tuple(sorted(streaming)))
