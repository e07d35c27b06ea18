"""Typed Python SDK for OPTIX: async and sync clients over the generated gRPC stubs."""

from __future__ import annotations

from optix_client.auth_rules import MfaRequiredError
from optix_client.client import OptixClient
from optix_client.config import ClientOptions
from optix_client.credentials import (
    Credentials,
    PasswordCredentials,
    RefreshTokenCredentials,
    StaticTokenCredentials,
    TokenProviderCredentials,
)
from optix_client.errors import OptixError
from optix_client.retry import RetryPolicy
from optix_client.sync_client import SyncOptixClient

__all__ = [
    "ClientOptions",
    "Credentials",
    "MfaRequiredError",
    "OptixClient",
    "OptixError",
    "PasswordCredentials",
    "RefreshTokenCredentials",
    "RetryPolicy",
    "StaticTokenCredentials",
    "SyncOptixClient",
    "TokenProviderCredentials",
]
