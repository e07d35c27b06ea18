"""The brokerage slice's domain logic: providers, the OAuth start/complete dance, connections,
syncs on request, and reads of the synced data (accounts, the priced portfolio, positions,
transactions). Knows nothing of gRPC; raises domain errors."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from optix_server.brokerage import names
from optix_server.brokerage.config import BrokerageSettings
from optix_server.brokerage.connectors.base import (
    AuthKind,
    AuthorizationGrant,
    BrokerConnector,
    ProviderInfo,
    TokenSet,
)
from optix_server.brokerage.connectors.errors import BrokerError
from optix_server.brokerage.connectors.models import TransactionType
from optix_server.brokerage.domain import (
    NEEDS_USER,
    Account,
    Connection,
    ConnectionStatus,
    PendingStart,
    StoredTransaction,
    Sync,
    SyncState,
)
from optix_server.brokerage.portfolio import PortfolioView, Valued, build_portfolio
from optix_server.brokerage.repository import BrokerageRepository, TransactionFilter
from optix_server.brokerage.snapshots import no_change
from optix_server.brokerage.vault import TokenVault
from optix_server.common.market_data import MarketData
from optix_server.common.occ import SymbolError, normalize_symbol
from optix_server.infra import errors
from optix_server.infra.aip.names import parse_parent, user_name
from optix_server.infra.aip.paging import PageTokens, page_size
from optix_server.infra.auth.clock import Clock
from optix_server.infra.db import new_id
from optix_server.infra.logging import get_logger

log = get_logger(__name__)

MAX_DISPLAY_NAME = 64
_STATE_BYTES = 32


def state_hash(state: str) -> str:
    """How a state is stored: its SHA-256, so a database read cannot redeem a start."""
    return hashlib.sha256(state.encode()).hexdigest()


def _state_refused() -> errors.FailedPrecondition:
    # One message for unknown, expired, used and another user's: a state reveals nothing.
    return errors.FailedPrecondition(
        "the connection state is unknown, expired or already used; start the connection again",
        reason="STATE_INVALID",
    )


@dataclass(frozen=True, slots=True)
class Started:
    """What StartConnection returns."""

    authorize_url: str
    state: str
    expire_time: datetime


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a List call."""

    items: list[T]
    next_page_token: str = ""


@dataclass(frozen=True, slots=True)
class TransactionQueryArgs:
    """ListTransactions' filters as received (validated here)."""

    start: datetime | None = None
    end: datetime | None = None
    types: Sequence[int] = ()
    symbol: str = ""
    # Timestamps the servicer could not read (out of range).
    violations: Sequence[errors.FieldViolation] = ()


class BrokerageService:
    """Users' brokerage connections and their synced data."""

    def __init__(
        self,
        repository: BrokerageRepository,
        connectors: Mapping[str, BrokerConnector],
        vault: TokenVault,
        market: MarketData,
        settings: BrokerageSettings,
        clock: Clock,
        page_key: bytes,
        wake_worker: Callable[[], None] = lambda: None,
        on_change: Callable[[str], Awaitable[None]] = no_change,
    ) -> None:
        self._repo = repository
        # Told whose book a write changed (the portfolio snapshots drop it).
        self._on_change = on_change
        self._connectors = connectors
        self._vault = vault
        self._market = market
        self._settings = settings
        self._clock = clock
        self._wake = wake_worker
        self._pages = {
            kind: PageTokens(page_key, f"brokerage {kind}")
            for kind in ("providers", "connections", "accounts", "positions", "transactions")
        }

    def twin(
        self,
        *,
        market: MarketData | None = None,
        settings: BrokerageSettings | None = None,
        connectors: Mapping[str, BrokerConnector] | None = None,
    ) -> BrokerageService:
        """The same service with another market data source, settings or connectors (tests: an
        outage, a minimum sync interval, a disabled provider)."""
        twin = copy.copy(self)
        twin._market = market or self._market
        twin._settings = settings or self._settings
        twin._connectors = connectors or self._connectors
        return twin

    # --- providers ---------------------------------------------------------------------------

    def providers(self, size: int, page_token: str) -> Page[ProviderInfo]:
        """Providers ordered by id."""
        limit = page_size(size)
        cursor = self._pages["providers"].read(page_token, "", {})
        after = "" if cursor is None else str(cursor[0])
        known = sorted((c.provider for c in self._connectors.values()), key=lambda p: p.id)
        rest = [p for p in known if p.id > after]
        page = rest[:limit]
        more = len(rest) > limit
        token = self._pages["providers"].issue("", {}, [page[-1].id]) if more else ""
        return Page(page, token)

    def _connector(self, provider_id: str, field: str = "provider") -> BrokerConnector:
        connector = self._connectors.get(provider_id)
        if connector is None:
            raise errors.InvalidArgument(
                f"unknown provider {provider_id!r}",
                [errors.FieldViolation(field, "not a provider this server knows (ListProviders)")],
            )
        return connector

    # --- connecting --------------------------------------------------------------------------

    async def start(
        self,
        caller: str,
        parent: str,
        *,
        provider: str,
        connection: str,
        redirect_uri: str,
        display_name: str,
    ) -> Started:
        """A sign-in URL and a single-use state for a new connection or a re-authorisation."""
        user_id = parse_parent(parent, caller)
        display = display_name.strip()
        if len(display) > MAX_DISPLAY_NAME:
            raise errors.InvalidArgument(
                "display_name is too long",
                [errors.FieldViolation("display_name", f"at most {MAX_DISPLAY_NAME} characters")],
            )
        connection_id: str | None = None
        if connection:
            connection_id = names.CONNECTIONS.parse(connection, caller, field="connection")
            existing = await self._owned(user_id, connection_id, connection)
            provider_id = existing.provider
        else:
            if not provider:
                raise errors.InvalidArgument(
                    "provider is required",
                    [errors.FieldViolation("provider", "name a provider, e.g. providers/paper")],
                )
            provider_id = names.parse_provider(provider)
        connector = self._connector(provider_id)
        if connection_id is None:
            await self._check_room(user_id)
        state = secrets.token_urlsafe(_STATE_BYTES)
        hashed = state_hash(state)
        request = connector.authorization_request(state, redirect_uri)
        expire = self._clock.now() + self._settings.state_lifetime
        await self._repo.add_start(
            PendingStart(
                state_hash=hashed,
                user_id=user_id,
                provider=provider_id,
                connection_id=connection_id,
                redirect_uri=request.redirect_uri,
                sealed_verifier=self._vault.seal_verifier(hashed, request.code_verifier),
                display_name=display or connector.provider.display_name,
                expire_time=expire,
            )
        )
        return Started(request.url, state, expire)

    async def complete(self, caller: str, parent: str, *, code: str, state: str) -> Connection:
        """Redeem a state (consumed whatever the outcome): exchange the code and create or
        re-authorise the connection, queued for a sync."""
        user_id = parse_parent(parent, caller)
        if not state:
            raise errors.InvalidArgument(
                "state is required",
                [errors.FieldViolation("state", "the state StartConnection returned")],
            )
        start = await self._repo.take_start(state_hash(state))
        now = self._clock.now()
        if start is None or start.user_id != user_id or start.expire_time <= now:
            raise _state_refused()
        connector = self._connector(start.provider)
        if connector.provider.auth_kind is AuthKind.OAUTH2_AUTHORIZATION_CODE and not code:
            raise errors.InvalidArgument(
                "code is required",
                [errors.FieldViolation("code", "the code the provider added to the redirect")],
            )
        verifier = self._vault.open_verifier(start.state_hash, start.sealed_verifier)
        if verifier is None:
            raise _state_refused()
        try:
            tokens = await connector.exchange_code(
                AuthorizationGrant(
                    code=code,
                    redirect_uri=start.redirect_uri,
                    code_verifier=verifier,
                    subject=user_id,
                )
            )
        except errors.Unavailable:
            # The provider was not reached, so the code may still be good: the state comes back
            # for a retry of this same call (the SDK retries UNAVAILABLE transparently).
            await self._repo.add_start(start)
            raise
        connection_id = start.connection_id or new_id()
        sealed = self._vault.seal(connection_id, tokens)
        try:
            if start.connection_id is not None:
                done = await self._repo.reauthorize(
                    user_id,
                    start.connection_id,
                    sealed,
                    reauth_time=tokens.refresh_expires_at,
                    now=now,
                )
                if done is None:
                    raise names.CONNECTIONS.not_found(
                        names.connection_name(user_id, start.connection_id)
                    )
                result = done
            else:
                result = await self._repo.create_connection(
                    Connection(
                        id=connection_id,
                        user_id=user_id,
                        provider=start.provider,
                        display_name=start.display_name,
                        status=ConnectionStatus.SYNCING,
                        create_time=now,
                        update_time=now,
                        reauth_required_time=tokens.refresh_expires_at,
                        sync_state=SyncState.QUEUED,
                        sync_create_time=now,
                    ),
                    sealed,
                    max_per_user=self._settings.max_connections_per_user,
                )
        except errors.OptixError:
            # Nothing was stored: give the provider its tokens back rather than leave them live.
            await self._revoke_quietly(connector, tokens)
            raise
        await self._on_change(user_id)
        self._wake()
        return result

    async def _revoke_quietly(self, connector: BrokerConnector, tokens: TokenSet) -> None:
        try:
            await connector.revoke(tokens)
        except BrokerError as exc:
            log.warning("revoking at the provider failed", reason=exc.reason)

    async def _check_room(self, user_id: str) -> None:
        count = len(await self._repo.connections(user_id))
        if count >= self._settings.max_connections_per_user:
            raise errors.ResourceExhausted(
                f"at most {self._settings.max_connections_per_user} connections per user; "
                "delete one first",
                reason="CONNECTION_LIMIT",
            )

    # --- connections -------------------------------------------------------------------------

    async def _owned(self, user_id: str, connection_id: str, name: str) -> Connection:
        found = await self._repo.get(user_id, connection_id)
        if found is None:
            raise names.CONNECTIONS.not_found(name)
        return found

    async def get(self, caller: str, name: str) -> Connection:
        """One of the caller's connections."""
        connection_id = names.CONNECTIONS.parse(name, caller)
        return await self._owned(caller, connection_id, name)

    async def list_connections(
        self, caller: str, parent: str, size: int, page_token: str
    ) -> Page[Connection]:
        """The caller's connections, oldest first."""
        user_id = parse_parent(parent, caller)
        limit = page_size(size)
        bound = {"parent": user_name(user_id)}
        cursor = self._pages["connections"].read(page_token, user_id, bound)
        after = None if cursor is None else (datetime.fromisoformat(cursor[0]), str(cursor[1]))
        found = await self._repo.connections(user_id, after, limit + 1)
        page = found[:limit]
        token = (
            self._pages["connections"].issue(
                user_id, bound, [page[-1].create_time.isoformat(), page[-1].id]
            )
            if len(found) > limit
            else ""
        )
        return Page(page, token)

    async def delete(self, caller: str, name: str) -> None:
        """Revoke at the provider (best effort), then delete the connection and its data."""
        connection = await self.get(caller, name)
        sealed = await self._repo.tokens(connection.id)
        connector = self._connectors.get(connection.provider)
        if sealed is not None and connector is not None:
            # Tokens that no longer open cannot be revoked either.
            with contextlib.suppress(errors.FailedPrecondition):
                await self._revoke_quietly(connector, self._vault.open(connection.id, sealed))
        if not await self._repo.delete_connection(caller, connection.id):
            raise names.CONNECTIONS.not_found(name)
        await self._on_change(caller)

    # --- syncs -------------------------------------------------------------------------------

    async def sync(self, caller: str, name: str) -> list[Sync]:
        """Queue syncs (one connection, or all for `-`); see SyncPortfolio."""
        connection_id = names.parse_connection_or_all(name, caller, "connection")
        if connection_id is None:
            targets = await self._repo.connections(caller)
        else:
            targets = [await self._owned(caller, connection_id, name)]
        now = self._clock.now()
        syncs: list[Sync] = []
        throttled: list[timedelta] = []
        queued_any = False
        for connection in targets:
            current = connection.current_sync()
            if current is not None:
                syncs.append(current)
                continue
            if connection.status in NEEDS_USER:
                syncs.append(
                    Sync(
                        connection.id,
                        caller,
                        SyncState.FAILED,
                        now,
                        now,
                        now,
                        connection.status_message or "sign in at the broker again to sync",
                    )
                )
                continue
            wait = self._wait_before_sync(connection, now)
            if wait is not None:
                throttled.append(wait)
                syncs.append(_last_sync(connection))
                continue
            if await self._repo.queue_sync(caller, connection.id, now):
                queued_any = True
                await self._on_change(caller)
            again = await self._repo.get(caller, connection.id)
            if again is not None:
                syncs.append(again.current_sync() or _last_sync(again))
        busy = any(s.state in (SyncState.QUEUED, SyncState.RUNNING) for s in syncs)
        if throttled and not queued_any and not busy:
            wait = max(throttled)
            raise errors.ResourceExhausted(
                f"synced moments ago; try again in {max(1, int(wait.total_seconds()))} s",
                retry_after=wait,
                reason="SYNC_TOO_SOON",
            )
        if queued_any:
            self._wake()
        return syncs

    def _wait_before_sync(self, connection: Connection, now: datetime) -> timedelta | None:
        if connection.last_sync_time is None:
            return None
        ready = connection.last_sync_time + self._settings.min_sync_interval
        return ready - now if ready > now else None

    # --- synced data -------------------------------------------------------------------------

    async def list_accounts(
        self, caller: str, parent: str, size: int, page_token: str
    ) -> Page[Account]:
        """Accounts of one connection or all, ordered by connection then display name."""
        connection_id = names.parse_connection_or_all(parent, caller, "parent")
        if connection_id is not None:
            await self._owned(caller, connection_id, parent)
        limit = page_size(size, cap=500)
        bound: dict[str, object] = {"parent": _canonical(parent, caller)}
        cursor = self._pages["accounts"].read(page_token, caller, bound)
        connections = await self._repo.connections(caller)
        order = {c.id: i for i, c in enumerate(connections)}
        accounts = sorted(
            (
                a
                for a in await self._repo.accounts(caller, connection_id)
                if a.connection_id in order
            ),
            key=lambda a: (order[a.connection_id], a.display_name, a.id),
        )
        return self._slice(accounts, cursor, limit, "accounts", caller, bound, lambda a: a.id)

    def _slice(
        self,
        items: list[T],
        cursor: list[object] | None,
        limit: int,
        kind: str,
        caller: str,
        bound: dict[str, object],
        key: Callable[[T], str],
    ) -> Page[T]:
        start = 0
        if cursor is not None:
            keys = [key(i) for i in items]
            last = str(cursor[0])
            start = keys.index(last) + 1 if last in keys else int(str(cursor[1]))
        page = items[start : start + limit]
        more = start + limit < len(items)
        token = (
            self._pages[kind].issue(caller, bound, [key(page[-1]), start + limit])
            if more and page
            else ""
        )
        return Page(page, token)

    def portfolio_owner(self, caller: str, name: str) -> str:
        """The user whose portfolio `name` is (the caller's, else NOT_FOUND / INVALID_ARGUMENT)."""
        return names.parse_portfolio(name, caller)

    async def portfolio(self, caller: str, name: str, budget_s: float) -> PortfolioView:
        """Every account and position, priced with one batch of current quotes."""
        user_id = names.parse_portfolio(name, caller)
        connections = await self._repo.connections(user_id)
        accounts = await self._repo.accounts(user_id)
        positions = await self._repo.positions(user_id)
        symbols = sorted({p.symbol for p in positions})
        try:
            quotes = dict(await self._market.quotes(symbols, budget_s)) if symbols else {}
        except errors.Unavailable:
            quotes = None
        return build_portfolio(user_id, connections, accounts, positions, quotes, self._clock.now())

    async def positions(self, caller: str, parent: str, size: int, page_token: str) -> Page[Valued]:
        """Per-account positions at their last synced prices, by account then symbol."""
        scope = names.parse_account_parent(parent, caller)
        await self._check_scope(caller, scope, parent)
        limit = page_size(size, default=100, cap=1000)
        bound: dict[str, object] = {"parent": _canonical(parent, caller)}
        cursor = self._pages["positions"].read(page_token, caller, bound)
        connections = await self._repo.connections(caller)
        accounts = await self._repo.accounts(caller, scope.connection_id)
        if scope.account_id is not None:
            accounts = [a for a in accounts if a.id == scope.account_id]
        stored = await self._repo.positions(caller, scope.connection_id, scope.account_id)
        view = build_portfolio(caller, connections, accounts, stored, None, self._clock.now())
        items = [v for figures in view.accounts for v in view.by_account[figures.account.id]]
        return self._slice(
            items,
            cursor,
            limit,
            "positions",
            caller,
            bound,
            lambda v: f"{v.account.id if v.account else ''}/{v.symbol}",
        )

    async def _check_scope(self, caller: str, scope: names.AccountScope, parent: str) -> None:
        if scope.connection_id is None:
            return
        if await self._repo.get(caller, scope.connection_id) is None:
            raise names.account_not_found(parent)
        if scope.account_id is not None and not any(
            a.id == scope.account_id for a in await self._repo.accounts(caller, scope.connection_id)
        ):
            raise names.account_not_found(parent)

    async def transactions(
        self, caller: str, parent: str, size: int, page_token: str, query: TransactionQueryArgs
    ) -> Page[StoredTransaction]:
        """Transactions newest first, filtered."""
        scope = names.parse_account_parent(parent, caller)
        check = errors.ViolationCollector(list(query.violations))
        if query.start and query.end and query.end <= query.start:
            check.add("end_time", "must be after start_time")
        symbol = ""
        if query.symbol:
            try:
                symbol = normalize_symbol(query.symbol)
            except SymbolError as exc:
                check.add("symbol", str(exc))
        valid_types = {t.value for t in TransactionType}
        for i, t in enumerate(query.types):
            if t not in valid_types:
                check.add(f"types[{i}]", "not a transaction type")
        check.raise_if_any()
        await self._check_scope(caller, scope, parent)
        limit = page_size(size, default=100, cap=1000)
        bound: dict[str, object] = {
            "parent": _canonical(parent, caller),
            "start": query.start.isoformat() if query.start else "",
            "end": query.end.isoformat() if query.end else "",
            "types": sorted(set(query.types)),
            "symbol": symbol,
        }
        cursor = self._pages["transactions"].read(page_token, caller, bound)
        after = None if cursor is None else (datetime.fromisoformat(cursor[0]), str(cursor[1]))
        found = await self._repo.transactions(
            caller,
            TransactionFilter(
                scope.connection_id,
                scope.account_id,
                query.start,
                query.end,
                tuple(sorted(set(query.types))),
                symbol,
            ),
            after,
            limit + 1,
        )
        page = found[:limit]
        token = (
            self._pages["transactions"].issue(
                caller, bound, [page[-1].time.isoformat(), page[-1].id]
            )
            if len(found) > limit
            else ""
        )
        return Page(page, token)


def _canonical(name: str, caller: str) -> str:
    return f"users/{caller}/" + name.split("/", 2)[2] if name.startswith("users/") else name


def _last_sync(connection: Connection) -> Sync:
    end = connection.last_sync_time or connection.update_time
    return Sync(
        connection.id,
        connection.user_id,
        connection.last_sync_result,
        end,
        None,
        end,
        connection.last_sync_error,
    )
