"""The registry of service slices: short name -> the factory building its ServiceModule."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

from optix_server.infra.module import Dependencies, ServiceModule

ModuleFactory = Callable[[Dependencies], ServiceModule]

# Each slice exposes `create_module(deps)` in its wiring module; imported lazily so a process
# only loads the slices it hosts.
SLICES: Mapping[str, str] = MappingProxyType(
    {
        "user": "optix_server.user.wiring",
        "marketdata": "optix_server.marketdata.wiring",
        "watchlist": "optix_server.watchlist.wiring",
        "brokerage": "optix_server.brokerage.wiring",
        "alert": "optix_server.alert.wiring",
    }
)


def factory_for(name: str) -> ModuleFactory:
    """The `create_module` of the slice called `name`."""
    module = importlib.import_module(SLICES[name])
    factory: ModuleFactory = module.create_module
    return factory


def create_modules(deps: Dependencies, names: Sequence[str]) -> list[ServiceModule]:
    """Build the ServiceModules for `names`, in order."""
    return [factory_for(name)(deps) for name in names]
