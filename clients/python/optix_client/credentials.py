"""How a client proves who it is: a user's password, a saved session, or a static service token."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class PasswordCredentials:
    """Sign in with email and password (again) whenever there is no usable refresh token."""

    email: str
    password: str


@dataclass(frozen=True)
class RefreshTokenCredentials:
    """Resume a saved session from its refresh token (single use: the client rotates it)."""

    refresh_token: str


@dataclass(frozen=True)
class StaticTokenCredentials:
    """A fixed bearer token, e.g. an internal service's token; never refreshed."""

    token: str


@dataclass(frozen=True)
class TokenProviderCredentials:
    """A callable asked for the bearer token on every call, e.g. a service identity that mints
    and caches short-lived service tokens (optix_server ServiceTokenSource.token)."""

    provider: Callable[[], str]


Credentials = (
    PasswordCredentials
    | RefreshTokenCredentials
    | StaticTokenCredentials
    | TokenProviderCredentials
)
