"""The connector interface every brokerage provider implements, and the values it exchanges.

A connector is stateless about users: the slice stores each connection's tokens (sealed, see
brokerage.tokens) and hands them back on every call. One connector instance serves one provider
app for every user, so it owns that app's request budget.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from optix_server.brokerage.connectors.models import (
    BrokerAccount,
    BrokerPosition,
    BrokerTransaction,
    TransactionType,
)


class AuthKind(enum.Enum):
    """How a provider authorises (values match optix.brokerage.v1.AuthKind)."""

    OAUTH2_AUTHORIZATION_CODE = 1
    # No redirect: StartConnection returns no URL, CompleteConnection needs only the state.
    NONE = 2


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    """A provider as ListProviders shows it, plus the redirect URIs this server accepts."""

    # Stable lowercase id: "schwab", "paper".
    id: str
    display_name: str
    auth_kind: AuthKind
    pkce: bool
    # Whether new connections can be made (e.g. Schwab needs client credentials configured).
    enabled: bool
    # How long a sign-in at the broker lasts; None when it never expires.
    authorization_lifetime: timedelta | None
    # Exact redirect URIs accepted by StartConnection; the first is the default. Empty for NONE.
    redirect_uris: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """Where to send the user, and what the server must keep until CompleteConnection."""

    # The provider's sign-in URL; empty for AUTH_KIND_NONE.
    url: str
    # The redirect URI in the URL; the code exchange must send the same one.
    redirect_uri: str
    # The PKCE verifier (RFC 7636) to keep server-side with the state; empty without PKCE.
    code_verifier: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class AuthorizationGrant:
    """What CompleteConnection redeems: the provider's code plus what the start kept."""

    # The `code` query parameter of the redirect; empty for AUTH_KIND_NONE.
    code: str = field(repr=False)
    redirect_uri: str
    code_verifier: str = field(default="", repr=False)
    # The OPTIX user the connection is for (the paper broker picks its demo account by it).
    subject: str = ""


@dataclass(frozen=True, slots=True)
class TokenSet:
    """A connection's provider tokens with their expiry times. Never logged: repr hides them."""

    access_token: str = field(repr=False)
    # None when the access token does not expire.
    access_expires_at: datetime | None
    refresh_token: str = field(repr=False)
    # When the refresh token dies and the user must sign in again (Schwab: 7 days after the
    # sign-in, not extended by refreshing); None when it never expires.
    refresh_expires_at: datetime | None
    scope: str = ""

    def access_expired(self, now: datetime, margin: timedelta = timedelta(0)) -> bool:
        """Whether the access token is expired (or will be within `margin`)."""
        return self.access_expires_at is not None and self.access_expires_at <= now + margin

    def refresh_expired(self, now: datetime, margin: timedelta = timedelta(0)) -> bool:
        """Whether the refresh token is dead (or will be within `margin`)."""
        return self.refresh_expires_at is not None and self.refresh_expires_at <= now + margin


@dataclass(frozen=True, slots=True)
class TransactionQuery:
    """Transactions in [start, end), optionally only of some types."""

    start: datetime
    end: datetime
    # None or empty: every type.
    types: Set[TransactionType] | None = None

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("start and end must be timezone-aware")
        if self.end <= self.start:
            raise ValueError("end must be after start")

    def wants(self, transaction: BrokerTransaction) -> bool:
        """Whether a transaction falls in the range and types asked for."""
        return self.start <= transaction.time < self.end and (
            not self.types or transaction.type in self.types
        )


def date_windows(
    start: datetime, end: datetime, longest: timedelta
) -> list[tuple[datetime, datetime]]:
    """[start, end) cut into consecutive windows of at most `longest`, newest first (a sync
    that stops early has the recent history)."""
    if longest <= timedelta(0):
        raise ValueError("longest must be positive")
    windows: list[tuple[datetime, datetime]] = []
    upper = end
    while upper > start:
        lower = max(start, upper - longest)
        windows.append((lower, upper))
        upper = lower
    return windows


class BrokerConnector(Protocol):
    """One brokerage provider: authorisation, token refresh and read-only account data.

    Every method raises BrokerError subclasses (brokerage.connectors.errors) for provider
    failures and never returns partial data.
    """

    @property
    def provider(self) -> ProviderInfo:
        """What the provider is and how it authorises."""
        ...

    def authorization_request(self, state: str, redirect_uri: str = "") -> AuthorizationRequest:
        """The sign-in URL for `state` (empty `redirect_uri`: the configured default).
        InvalidArgument when the redirect URI is not configured for the provider."""
        ...

    async def exchange_code(self, grant: AuthorizationGrant) -> TokenSet:
        """Trade an authorization code for tokens. ProviderRejected when the code is refused."""
        ...

    async def refresh(self, tokens: TokenSet) -> TokenSet:
        """A fresh access token. ReauthorizationRequired when the refresh token is dead."""
        ...

    async def list_accounts(self, access_token: str) -> list[BrokerAccount]:
        """Every account of the login, with balances and positions."""
        ...

    async def list_positions(self, access_token: str, account_id: str) -> list[BrokerPosition]:
        """One account's positions (`account_id` is BrokerAccount.provider_account_id)."""
        ...

    async def list_transactions(
        self, access_token: str, account_id: str, query: TransactionQuery
    ) -> list[BrokerTransaction]:
        """One account's transactions matching `query`, oldest first, each once (ranges longer
        than the provider allows per request are fetched window by window)."""
        ...

    async def revoke(self, tokens: TokenSet) -> bool:
        """Revoke the tokens at the provider: True when it confirmed, False when it offers no
        revocation. Provider failures raise as elsewhere (callers treat this as best effort)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


def sorted_transactions(items: Sequence[BrokerTransaction]) -> list[BrokerTransaction]:
    """Oldest first, each provider id once (the last report of an id wins)."""
    by_id = {t.provider_transaction_id: t for t in items}
    return sorted(by_id.values(), key=lambda t: (t.time, t.provider_transaction_id))
