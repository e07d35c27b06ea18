"""The sync worker: claims due connections (a lease per connection, so replicas never sync one
at once), refreshes access tokens before they expire, fetches accounts, balances, positions and
transactions, and writes the new snapshot in one transaction, or keeps the previous one when
anything fails. Connections whose sign-in ends soon are marked REAUTH_REQUIRED ahead of time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from functools import partial
from typing import TypeVar

from optix_server.brokerage.config import BrokerageSettings
from optix_server.brokerage.connectors.base import BrokerConnector, TokenSet, TransactionQuery
from optix_server.brokerage.connectors.errors import (
    AccessTokenExpired,
    AuthorizationRevoked,
    ReauthorizationRequired,
)
from optix_server.brokerage.connectors.models import BrokerAccount, BrokerTransaction
from optix_server.brokerage.domain import (
    Connection,
    ConnectionStatus,
    Snapshot,
    SyncedPrice,
    SyncState,
)
from optix_server.brokerage.portfolio import multiplier_of, quote_price
from optix_server.brokerage.repository import (
    REAUTH_SOON_MESSAGE,
    BrokerageRepository,
    SyncOutcome,
)
from optix_server.brokerage.snapshots import EVERYONE, no_change
from optix_server.brokerage.vault import TokenVault
from optix_server.common.market_data import MarketData
from optix_server.infra import errors
from optix_server.infra.auth.clock import Clock
from optix_server.infra.background import BackgroundTask
from optix_server.infra.db import new_id
from optix_server.infra.lifecycle import Lifecycle
from optix_server.infra.logging import get_logger

log = get_logger(__name__)
R = TypeVar("R")

QUOTE_BUDGET_S = 5.0
REAUTH_MESSAGE = "the broker sign-in expired; sign in again"


class SyncWorker:
    """Runs due syncs: in a background loop on every replica, or when run_due is awaited."""

    def __init__(
        self,
        repository: BrokerageRepository,
        connectors: Mapping[str, BrokerConnector],
        vault: TokenVault,
        market: MarketData,
        settings: BrokerageSettings,
        clock: Clock,
        lifecycle: Lifecycle,
        *,
        owner: str | None = None,
        on_change: Callable[[str], Awaitable[None]] = no_change,
    ) -> None:
        self._repo = repository
        # Told whose book a sync changed (EVERYONE for a change across users).
        self._on_change = on_change
        self._connectors = connectors
        self._vault = vault
        self._market = market
        self._settings = settings
        self._clock = clock
        self._lifecycle = lifecycle
        # Names this worker's leases; unique per worker so a lost lease is noticed.
        self.owner = owner or new_id()
        self._wake = asyncio.Event()
        self._background = BackgroundTask(self._run, "brokerage-sync")
        # Background passes finished, for whoever awaits the next one.
        self._passes = asyncio.Condition()

    def twin(
        self, *, clock: Clock | None = None, connectors: Mapping[str, BrokerConnector] | None = None
    ) -> SyncWorker:
        """Another worker (its own lease owner) on the same storage, optionally with another
        clock or connectors: a second replica, or time moved on."""
        return SyncWorker(
            self._repo,
            connectors or self._connectors,
            self._vault,
            self._market,
            self._settings,
            clock or self._clock,
            self._lifecycle,
        )

    @property
    def connectors(self) -> Mapping[str, BrokerConnector]:
        """The connectors syncs go through."""
        return self._connectors

    def wake(self) -> None:
        """Run due syncs soon (a sync was just queued)."""
        self._wake.set()

    async def run_due(self) -> int:
        """Mark soon-expiring connections, then sync every due connection this worker can
        claim; how many it synced."""
        now = self._clock.now()
        if await self._repo.mark_reauth_due(now, self._settings.reauth_warning):
            await self._on_change(EVERYONE)
        total = 0
        while True:
            claimed = await self._repo.claim_due(
                self.owner,
                self._clock.now(),
                self._settings.sync_lease,
                self._settings.worker_batch,
            )
            if not claimed:
                return total
            await asyncio.gather(*(self.sync_one(c) for c in claimed))
            total += len(claimed)

    async def sync_one(self, connection: Connection) -> bool:
        """Sync one claimed connection; whether its new snapshot was written."""
        snapshot: Snapshot | None = None
        try:
            snapshot = await self._fetch(connection)
        except ReauthorizationRequired as exc:
            status = (
                ConnectionStatus.REVOKED
                if isinstance(exc, AuthorizationRevoked)
                else ConnectionStatus.REAUTH_REQUIRED
            )
            outcome = SyncOutcome(status, exc.message, SyncState.FAILED, exc.message, None)
        except errors.OptixError as exc:
            outcome = self._failed(exc.message)
        except Exception:
            # A bug must not wedge the connection: it fails this sync and retries later.
            log.exception("brokerage sync failed unexpectedly", connection=connection.id)
            outcome = self._failed("the sync failed unexpectedly; it will be retried")
        else:
            outcome = self._done(connection)
        written = await self._repo.finish_sync(
            connection.id, self.owner, outcome, self._clock.now(), snapshot
        )
        if not written:
            log.warning("sync lease lost before the result was written", connection=connection.id)
        else:
            await self._on_change(connection.user_id)
        return written and snapshot is not None

    def _failed(self, message: str) -> SyncOutcome:
        return SyncOutcome(
            ConnectionStatus.ERROR,
            message,
            SyncState.FAILED,
            message,
            self._clock.now() + self._settings.sync_interval,
        )

    def _done(self, connection: Connection) -> SyncOutcome:
        now = self._clock.now()
        ends = connection.reauth_required_time
        if ends is not None and ends <= now + self._settings.reauth_warning:
            return SyncOutcome(
                ConnectionStatus.REAUTH_REQUIRED, REAUTH_SOON_MESSAGE, SyncState.DONE, "", None
            )
        return SyncOutcome(
            ConnectionStatus.ACTIVE, "", SyncState.DONE, "", now + self._settings.sync_interval
        )

    async def _tokens(self, connection: Connection, connector: BrokerConnector) -> TokenSet:
        sealed = await self._repo.tokens(connection.id)
        if sealed is None:
            raise ReauthorizationRequired(REAUTH_MESSAGE)
        tokens = self._vault.open(connection.id, sealed)
        now = self._clock.now()
        if tokens.refresh_expired(now):
            raise ReauthorizationRequired(REAUTH_MESSAGE)
        if tokens.access_expired(now, self._settings.refresh_margin):
            tokens = await self._refresh(connection, connector, tokens)
        return tokens

    async def _refresh(
        self, connection: Connection, connector: BrokerConnector, tokens: TokenSet
    ) -> TokenSet:
        fresh = await connector.refresh(tokens)
        await self._repo.store_tokens(
            connection.id, self.owner, self._vault.seal(connection.id, fresh)
        )
        return fresh

    async def _fetch(self, connection: Connection) -> Snapshot:
        connector = self._connectors.get(connection.provider)
        if connector is None:
            raise errors.FailedPrecondition(f"provider {connection.provider} is not available")
        tokens = await self._tokens(connection, connector)
        holder = [tokens]

        async def call(fn: Callable[[str], Awaitable[R]]) -> R:
            # A 401 mid-sync: refresh once and retry; a second 401 ends the sync.
            try:
                return await fn(holder[0].access_token)
            except AccessTokenExpired:
                holder[0] = await self._refresh(connection, connector, holder[0])
                return await fn(holder[0].access_token)

        accounts: list[BrokerAccount] = await call(connector.list_accounts)
        # Whole seconds: the provider rounds the end of a range up to the millisecond, and a
        # full-year window must stay within its one-year limit after that.
        now = self._clock.now().replace(microsecond=0)
        since = (
            connection.last_successful_sync_time.replace(microsecond=0)
            - self._settings.resync_overlap
            if connection.last_successful_sync_time is not None
            else now - self._settings.first_sync_history
        )
        # The end is exclusive: one second past now covers what happened this very second.
        query = TransactionQuery(since, now + timedelta(seconds=1))
        history: dict[str, list[BrokerTransaction]] = {}
        for account in accounts:
            pid = account.provider_account_id
            history[pid] = await call(partial(_transactions, connector, pid, query))
        return Snapshot(tuple(accounts), history, await self._prices(accounts))

    async def _prices(self, accounts: list[BrokerAccount]) -> dict[str, SyncedPrice]:
        """Per symbol, the price to fall back on later: the provider's mark, else the quote."""
        symbols = sorted({p.symbol for a in accounts for p in a.positions})
        try:
            quotes = await self._market.quotes(symbols, QUOTE_BUDGET_S) if symbols else {}
        except errors.Unavailable:
            quotes = {}
        prices: dict[str, SyncedPrice] = {}
        for account in accounts:
            for held in account.positions:
                quoted = (
                    quote_price(quotes[held.symbol])
                    if held.symbol in quotes
                    else SyncedPrice(None, None)
                )
                size = held.quantity * multiplier_of(held.symbol)
                marked = (
                    held.market_value / size
                    if held.market_value is not None and not size.is_zero()
                    else None
                )
                prices[held.symbol] = SyncedPrice(marked or quoted.price, quoted.previous_close)
        return prices

    # --- background loop ---------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._lifecycle.shutting_down.is_set():
            self._wake.clear()
            try:
                await self.run_due()
                await self._repo.purge_starts(self._clock.now())
            except Exception:
                log.exception("brokerage sync pass failed")
            async with self._passes:
                self._passes.notify_all()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wait(), self._settings.worker_poll.total_seconds())

    async def _wait(self) -> None:
        shutdown = asyncio.ensure_future(self._lifecycle.shutting_down.wait())
        woken = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({shutdown, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            shutdown.cancel()
            woken.cancel()

    async def next_pass(self) -> None:
        """Wait until the background loop finishes its next pass."""
        async with self._passes:
            await self._passes.wait()

    def start(self) -> None:
        """Start the background loop."""
        self._background.start()

    async def stop(self) -> None:
        """Stop the background loop (a sync in flight is abandoned; its lease lapses)."""
        await self._background.stop()


async def _transactions(
    connector: BrokerConnector, account_id: str, query: TransactionQuery, access_token: str
) -> list[BrokerTransaction]:
    return await connector.list_transactions(access_token, account_id, query)
