"""Imports every slice's models so Base.metadata is complete (for Alembic and test schemas)."""

from __future__ import annotations

import importlib
import importlib.util

from optix_server.infra.settings import ALL_SERVICES


def import_all_models() -> None:
    """Import `optix_server.<svc>.models` for every slice that has one, and the shared tables."""
    importlib.import_module("optix_server.infra.aip.request_ids")
    importlib.import_module("optix_server.infra.auth.revocation_log")
    for service in ALL_SERVICES:
        module = f"optix_server.{service}.models"
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)
