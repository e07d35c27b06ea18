"""The built-in paper broker: connected in one call (no redirect, no external account), with a
deterministic demo account per user (see paper_book)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from optix_server.brokerage.connectors.base import (
    AuthKind,
    AuthorizationGrant,
    AuthorizationRequest,
    ProviderInfo,
    TokenSet,
    TransactionQuery,
)
from optix_server.brokerage.connectors.errors import ProviderRejected
from optix_server.brokerage.connectors.models import (
    AccountType,
    BrokerAccount,
    BrokerBalances,
    BrokerPosition,
    BrokerTransaction,
)
from optix_server.brokerage.connectors.paper_book import (
    DEFAULT_UNIVERSE,
    DemoBook,
    DemoTicker,
    build_demo_book,
)
from optix_server.infra.auth.clock import Clock

PROVIDER_ID = "paper"
DISPLAY_NAME = "Paper trading"
_TOKEN_PREFIX = "paper.v1"
# Reg T: a margin account may buy twice its cash in equities.
_MARGIN_MULTIPLE = 2


@dataclass(frozen=True, slots=True)
class _Login:
    subject: str
    opened_at: datetime


class PaperConnector:
    """A broker simulated in process; its "tokens" name the user and the account's opening."""

    def __init__(
        self,
        clock: Clock,
        *,
        universe: Sequence[DemoTicker] = DEFAULT_UNIVERSE,
        starting_cash: Decimal = Decimal(100_000),
        enabled: bool = True,
    ) -> None:
        self._clock = clock
        self._universe = tuple(universe)
        self._starting_cash = starting_cash
        self._info = ProviderInfo(
            id=PROVIDER_ID,
            display_name=DISPLAY_NAME,
            auth_kind=AuthKind.NONE,
            pkce=False,
            enabled=enabled,
            authorization_lifetime=None,
        )

    @property
    def provider(self) -> ProviderInfo:
        """The paper broker as ListProviders shows it."""
        return self._info

    async def close(self) -> None:
        """Nothing to release."""

    def authorization_request(self, state: str, redirect_uri: str = "") -> AuthorizationRequest:
        """No URL: CompleteConnection follows at once with the state alone."""
        del state, redirect_uri
        if not self._info.enabled:
            raise ProviderRejected(
                "the paper broker is not enabled on this server", reason="PROVIDER_DISABLED"
            )
        return AuthorizationRequest(url="", redirect_uri="")

    async def exchange_code(self, grant: AuthorizationGrant) -> TokenSet:
        """Open (or reopen) the user's demo account now; the tokens never expire."""
        if not grant.subject:
            raise ProviderRejected("the paper broker needs the user", reason="SUBJECT_MISSING")
        opened = int(self._clock.now().timestamp())
        token = f"{_TOKEN_PREFIX}.{opened}.{grant.subject}"
        return TokenSet(
            access_token=token,
            access_expires_at=None,
            refresh_token=token,
            refresh_expires_at=None,
        )

    async def refresh(self, tokens: TokenSet) -> TokenSet:
        """Paper tokens do not expire: the same ones."""
        self._login(tokens.refresh_token)
        return tokens

    async def revoke(self, tokens: TokenSet) -> bool:
        """Nothing is held outside OPTIX: always revoked."""
        del tokens
        return True

    def _login(self, token: str) -> _Login:
        prefix, _, rest = token.partition(f"{_TOKEN_PREFIX}.")
        opened, _, subject = rest.partition(".")
        if prefix or not opened.isdigit() or not subject:
            raise ProviderRejected("not a paper broker token", reason="TOKEN_MALFORMED")
        return _Login(subject, datetime.fromtimestamp(int(opened), UTC))

    def _book(self, access_token: str) -> tuple[str, DemoBook]:
        login = self._login(access_token)
        book = build_demo_book(
            login.subject,
            login.opened_at,
            self._clock.now(),
            universe=self._universe,
            starting_cash=self._starting_cash,
        )
        digest = hashlib.blake2b(login.subject.encode(), digest_size=6).hexdigest()
        return f"paper-{digest}", book

    def _account_book(self, access_token: str, account_id: str) -> DemoBook:
        known, book = self._book(access_token)
        if account_id != known:
            raise ProviderRejected(
                "the paper broker has no such account", reason="ACCOUNT_NOT_FOUND"
            )
        return book

    async def list_accounts(self, access_token: str) -> list[BrokerAccount]:
        """The user's one margin account with its cash and positions (unpriced)."""
        account_id, book = self._book(access_token)
        return [
            BrokerAccount(
                provider_account_id=account_id,
                account_number_last4=book.account_last4,
                display_name=f"Paper ...{book.account_last4}",
                type=AccountType.MARGIN,
                currency_code="USD",
                balances=BrokerBalances(
                    cash=book.cash,
                    buying_power=max(book.cash, Decimal(0)) * _MARGIN_MULTIPLE,
                    # Valued by the portfolio from quotes: the paper broker does not price.
                    liquidation_value=None,
                ),
                positions=book.positions,
            )
        ]

    async def list_positions(self, access_token: str, account_id: str) -> list[BrokerPosition]:
        """The account's positions with quantity and cost basis."""
        return list(self._account_book(access_token, account_id).positions)

    async def list_transactions(
        self, access_token: str, account_id: str, query: TransactionQuery
    ) -> list[BrokerTransaction]:
        """The account's history matching `query`, oldest first."""
        book = self._account_book(access_token, account_id)
        return [t for t in book.transactions if query.wants(t)]
