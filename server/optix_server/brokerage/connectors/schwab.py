"""The Schwab Trader API connector: OAuth 2.0 authorization code flow with HTTP Basic client
authentication (PKCE S256 when configured), account hashes, positions and transaction history
in date windows of at most a year, all within the app's request budget."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from optix_server.brokerage.config import SchwabSettings
from optix_server.brokerage.connectors.base import (
    AuthKind,
    AuthorizationGrant,
    AuthorizationRequest,
    ProviderInfo,
    TokenSet,
    TransactionQuery,
    date_windows,
    sorted_transactions,
)
from optix_server.brokerage.connectors.errors import (
    AccessTokenExpired,
    AuthorizationRevoked,
    ProviderRejected,
    ReauthorizationRequired,
)
from optix_server.brokerage.connectors.http import (
    HttpRefused,
    ProviderHttp,
    ProviderRequest,
    RetryPolicy,
)
from optix_server.brokerage.connectors.models import (
    BrokerAccount,
    BrokerPosition,
    BrokerTransaction,
)
from optix_server.brokerage.connectors.pkce import code_challenge, new_code_verifier
from optix_server.brokerage.connectors.schwab_mapping import (
    account_from_json,
    account_hashes,
    format_schwab_time,
    positions_of_account,
    schwab_types_for,
    tokens_from_json,
    transactions_from_json,
)
from optix_server.infra.auth.clock import Clock
from optix_server.infra.errors import FieldViolation, InvalidArgument
from optix_server.infra.request_rate import RequestLimiter, SlidingWindowLimiter

PROVIDER_ID = "schwab"
DISPLAY_NAME = "Charles Schwab"
# The Trader API refuses transaction ranges longer than a year; 365 days is within a year
# whatever the calendar.
MAX_TRANSACTION_WINDOW = timedelta(days=365)
_NO_REVOCATION = frozenset({404, 405, 501})


class SchwabConnector:
    """Schwab accounts for every user of one Schwab app (client id)."""

    def __init__(
        self,
        settings: SchwabSettings,
        clock: Clock,
        *,
        limiter: RequestLimiter | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._settings = settings
        self._clock = clock
        # One budget per app: pass a SharedWindowLimiter so every replica counts together.
        self._limiter = limiter or SlidingWindowLimiter(settings.requests_per_minute, 60.0)
        self.http = ProviderHttp(
            DISPLAY_NAME,
            self._limiter,
            timeout=settings.timeout_seconds,
            policy=RetryPolicy(max_attempts=settings.max_attempts),
            sleep=sleep,
            rng=rng,
            correlation_header="Schwab-Client-CorrelId",
            transport=transport,
        )
        self._info = ProviderInfo(
            id=PROVIDER_ID,
            display_name=DISPLAY_NAME,
            auth_kind=AuthKind.OAUTH2_AUTHORIZATION_CODE,
            pkce=settings.pkce,
            enabled=settings.enabled,
            authorization_lifetime=settings.refresh_token_lifetime,
            redirect_uris=settings.redirect_uris,
        )

    @property
    def provider(self) -> ProviderInfo:
        """Schwab as ListProviders shows it."""
        return self._info

    async def close(self) -> None:
        """Close the HTTP client."""
        await self.http.close()

    # --- authorisation -----------------------------------------------------------------

    def authorization_request(self, state: str, redirect_uri: str = "") -> AuthorizationRequest:
        """The /v1/oauth/authorize URL: client_id, redirect_uri, response_type=code, scope,
        state and (with PKCE) the S256 code challenge. FailedPrecondition when the app's
        credentials are not configured."""
        if not self._info.enabled:
            raise ProviderRejected(
                "Schwab is not enabled on this server", reason="PROVIDER_DISABLED"
            )
        uri = self._redirect_uri(redirect_uri)
        params = {
            "client_id": self._settings.client_id,
            "redirect_uri": uri,
            "response_type": "code",
            "scope": self._settings.scope,
            "state": state,
        }
        verifier = ""
        if self._settings.pkce:
            verifier = new_code_verifier()
            params["code_challenge"] = code_challenge(verifier)
            params["code_challenge_method"] = "S256"
        url = f"{self._settings.oauth_url}/authorize?{urlencode(params, quote_via=quote)}"
        return AuthorizationRequest(url=url, redirect_uri=uri, code_verifier=verifier)

    def _redirect_uri(self, requested: str) -> str:
        allowed = self._settings.redirect_uris
        if not allowed:
            raise InvalidArgument(
                "no redirect URI is configured for Schwab",
                [FieldViolation("redirect_uri", "the server has no Schwab redirect URI")],
            )
        if not requested:
            return allowed[0]
        if requested not in allowed:
            raise InvalidArgument(
                "redirect_uri is not configured for Schwab",
                [FieldViolation("redirect_uri", "must exactly match a configured redirect URI")],
            )
        return requested

    def _client_auth(self) -> tuple[str, str]:
        return (self._settings.client_id, self._settings.client_secret)

    async def exchange_code(self, grant: AuthorizationGrant) -> TokenSet:
        """POST /v1/oauth/token grant_type=authorization_code (Basic client auth). The code is
        single-use, so the call is not repeated once Schwab may have processed it."""
        if not grant.code:
            raise ProviderRejected("an authorization code is required", reason="CODE_MISSING")
        form = {
            "grant_type": "authorization_code",
            "code": grant.code,
            "redirect_uri": grant.redirect_uri,
        }
        if grant.code_verifier:
            form["code_verifier"] = grant.code_verifier
        now = self._clock.now()
        try:
            body = await self.http.request(
                ProviderRequest(
                    "POST",
                    f"{self._settings.oauth_url}/token",
                    "token: authorization_code",
                    data=form,
                    auth=self._client_auth(),
                    idempotent=False,
                )
            )
        except HttpRefused as refused:
            raise ProviderRejected(
                f"Schwab refused the authorization code (HTTP {refused.status}); start again",
                reason="CODE_REJECTED",
            ) from None
        return tokens_from_json(body, now, self._settings.refresh_token_lifetime, None)

    async def refresh(self, tokens: TokenSet) -> TokenSet:
        """POST /v1/oauth/token grant_type=refresh_token. The refresh token keeps its original
        expiry (Schwab never extends it); a dead one is ReauthorizationRequired."""
        now = self._clock.now()
        if tokens.refresh_expired(now):
            raise ReauthorizationRequired("the Schwab authorisation expired; sign in again")
        try:
            body = await self.http.request(
                ProviderRequest(
                    "POST",
                    f"{self._settings.oauth_url}/token",
                    "token: refresh_token",
                    data={"grant_type": "refresh_token", "refresh_token": tokens.refresh_token},
                    auth=self._client_auth(),
                )
            )
        except HttpRefused as refused:
            if refused.status in {400, 401}:
                # Refused before its end (checked above): withdrawn at Schwab.
                raise AuthorizationRevoked(
                    "Schwab no longer accepts this authorisation (access was withdrawn at"
                    " Schwab); sign in again or delete the connection"
                ) from None
            raise ProviderRejected(
                f"Schwab refused the token refresh (HTTP {refused.status})"
            ) from None
        return tokens_from_json(body, now, self._settings.refresh_token_lifetime, tokens)

    async def revoke(self, tokens: TokenSet) -> bool:
        """POST /v1/oauth/revoke (RFC 7009 form) for the refresh token. Schwab documents no
        revocation endpoint; a 404/405 means there is none (users revoke at schwab.com)."""
        try:
            await self.http.request(
                ProviderRequest(
                    "POST",
                    f"{self._settings.oauth_url}/revoke",
                    "revoke",
                    data={"token": tokens.refresh_token, "token_type_hint": "refresh_token"},
                    auth=self._client_auth(),
                )
            )
        except HttpRefused as refused:
            if refused.status in _NO_REVOCATION:
                return False
            raise ProviderRejected(
                f"Schwab refused the revocation (HTTP {refused.status})"
            ) from None
        return True

    # --- account data ------------------------------------------------------------------

    async def _get(
        self, access_token: str, label: str, path: str, params: dict[str, str] | None = None
    ) -> Any:
        try:
            return await self.http.request(
                ProviderRequest(
                    "GET",
                    f"{self._settings.trader_url}{path}",
                    label,
                    params=params,
                    headers={"Authorization": f"Bearer {access_token}"},
                )
            )
        except HttpRefused as refused:
            if refused.status == 401:
                raise AccessTokenExpired() from None
            if refused.status == 403:
                raise ProviderRejected(
                    "Schwab refused access to the account", reason="ACCESS_DENIED"
                ) from None
            if refused.status == 404:
                raise ProviderRejected(
                    "Schwab does not know the account", reason="ACCOUNT_NOT_FOUND"
                ) from None
            raise ProviderRejected(f"Schwab refused the request (HTTP {refused.status})") from None

    async def list_accounts(self, access_token: str) -> list[BrokerAccount]:
        """GET /accounts/accountNumbers (number -> hash) and /accounts?fields=positions."""
        hashes = account_hashes(
            await self._get(access_token, "accountNumbers", "/accounts/accountNumbers")
        )
        body = await self._get(access_token, "accounts", "/accounts", {"fields": "positions"})
        if not isinstance(body, list):
            body = [body]
        accounts = [account_from_json(item, hashes) for item in body]
        return [a for a in accounts if a is not None]

    async def list_positions(self, access_token: str, account_id: str) -> list[BrokerPosition]:
        """GET /accounts/{hash}?fields=positions."""
        path = f"/accounts/{quote(account_id, safe='')}"
        return positions_of_account(
            await self._get(access_token, "account", path, {"fields": "positions"})
        )

    async def list_transactions(
        self, access_token: str, account_id: str, query: TransactionQuery
    ) -> list[BrokerTransaction]:
        """GET /accounts/{hash}/transactions per date window of at most a year, newest window
        first; oldest first in the result, each activity once."""
        path = f"/accounts/{quote(account_id, safe='')}/transactions"
        types = ",".join(schwab_types_for(query.types))
        found: list[BrokerTransaction] = []
        for start, end in date_windows(query.start, query.end, MAX_TRANSACTION_WINDOW):
            body = await self._get(
                access_token,
                "transactions",
                path,
                {
                    "startDate": format_schwab_time(start),
                    "endDate": format_schwab_time(end, round_up=True),
                    "types": types,
                },
            )
            found.extend(t for t in transactions_from_json(body) if query.wants(t))
        return sorted_transactions(found)
