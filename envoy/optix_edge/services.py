"""What the edge routes: each service's gRPC name and its server-streaming methods, from gen/."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from google.protobuf.descriptor import FileDescriptor

# Service-to-service RPCs (their proto comments say "Internal"): the edge answers them itself
# with PERMISSION_DENIED, so no browser or app ever reaches them, whatever token it holds.
# Named as `<Service>/<Method>` per package; a name the descriptors lack is an error.
INTERNAL_METHODS: dict[str, tuple[str, ...]] = {"user": ("UserService/GetUserWebhook",)}


@dataclass(frozen=True)
class RoutedService:
    """One service package as the edge sees it."""

    short_name: str
    # Full gRPC service names, e.g. optix.user.v1.UserService (empty until gen/ has them).
    grpc_services: tuple[str, ...]
    # Full paths (/pkg.Service/Method) of server-streaming RPCs: they get no route deadline.
    streaming_paths: tuple[str, ...]
    # Full paths of internal RPCs, refused at the edge (INTERNAL_METHODS).
    internal_paths: tuple[str, ...] = ()

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
    methods = {
        f"{service.name}/{method.name}"
        for service in file.services_by_name.values()
        for method in service.methods
    }
    internal = INTERNAL_METHODS.get(short_name, ())
    missing = [name for name in internal if name not in methods]
    if missing:
        raise LookupError(f"internal methods not in optix.{short_name}.v1: {missing}")
    return RoutedService(
        short_name,
        tuple(sorted(names)),
        tuple(sorted(streaming)),
        tuple(sorted(f"/optix.{short_name}.v1.{name}" for name in internal)),
    )
