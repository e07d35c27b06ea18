"""The sync worker: idempotent re-syncs (transactions upserted by provider id), refresh before
expiry, REAUTH_REQUIRED ahead of the refresh token's end, REVOKED at once for one refused before
it, a failed sync keeping the previous snapshot, two workers never syncing one connection at
once, the minimum interval, no plaintext token at rest, and key rotation."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from optix.brokerage.v1 import brokerage_service_pb2 as pb
from optix.brokerage.v1 import connection_pb2
from optix_server.brokerage.config import BrokerageSettings
from optix_server.brokerage.connectors.base import BrokerConnector
from optix_server.brokerage.connectors.models import BrokerAccount
from optix_server.brokerage.models import TokenRow
from optix_server.brokerage.money import from_money
from optix_server.brokerage.tokens import TokenBox, TokenKey, reseal_all
from optix_server.brokerage.vault import TokenVault
from optix_server.infra import errors
from optix_server.infra.auth.clock import SystemClock
from tests.brokerage.harness import Stack, User, brokerage_stack
from tests.support.schwab_standin import Fault, StandIn

pytestmark = pytest.mark.asyncio(loop_scope="package")

ACTIVE = connection_pb2.CONNECTION_STATUS_ACTIVE
REAUTH = connection_pb2.CONNECTION_STATUS_REAUTH_REQUIRED
ERROR = connection_pb2.CONNECTION_STATUS_ERROR
TABLES = (
    "brokerage_starts",
    "brokerage_connections",
    "brokerage_tokens",
    "brokerage_accounts",
    "brokerage_positions",
    "brokerage_transactions",
)


class Later:
    """The system clock moved `ahead` into the future."""

    def __init__(self, ahead: timedelta) -> None:
        self._ahead = ahead

    def now(self) -> datetime:
        """Now, plus the offset."""
        return SystemClock().now() + self._ahead


async def _transactions(user: User) -> dict[str, tuple[str, Decimal]]:
    reply = await user.brokerage.ListTransactions(
        pb.ListTransactionsRequest(parent="users/me/connections/-/accounts/-", page_size=1000)
    )
    return {t.provider_transaction_id: (t.name, from_money(t.amount)) for t in reply.transactions}


async def _sync(stack: Stack, user: User, name: str) -> connection_pb2.Connection:
    await user.brokerage.SyncPortfolio(pb.SyncPortfolioRequest(connection=name))
    await stack.worker.run_due()
    return await user.connection(name)


@contextmanager
def _changed_history(stack: Stack) -> Iterator[list[dict[str, Any]]]:
    original = stack.standin.transactions["12345678"]
    changed: list[dict[str, Any]] = json.loads(json.dumps(original))
    stack.standin.transactions["12345678"] = changed
    try:
        yield changed
    finally:
        stack.standin.transactions["12345678"] = original


async def test_resync_is_idempotent_and_updates_changes(stack: Stack) -> None:
    user = await stack.user()
    connection = await user.connect_schwab()
    await stack.worker.run_due()
    first = await _transactions(user)
    assert first
    again = await _sync(stack, user, connection.name)
    assert again.status == ACTIVE
    assert await _transactions(user) == first
    with _changed_history(stack) as history:
        # A recent entry (within the re-sync overlap) appears, then the broker corrects it.
        recent = json.loads(json.dumps(next(t for t in history if str(t["activityId"]) in first)))
        recent["activityId"] = 91_000_000_001
        when = (SystemClock().now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
        recent["time"] = recent["tradeDate"] = when
        history.append(recent)
        await _sync(stack, user, connection.name)
        added = await _transactions(user)
        assert added.keys() == first.keys() | {"91000000001"}
        recent["netAmount"] = -12.34
        await _sync(stack, user, connection.name)
    after = await _transactions(user)
    assert after.keys() == added.keys()
    assert after["91000000001"] == (added["91000000001"][0], Decimal("-12.34"))


async def test_access_token_is_refreshed_before_it_expires(stack: Stack) -> None:
    user = await stack.user()
    connection = await user.connect_schwab()
    connection_id = connection.name.rsplit("/", 1)[1]
    before = await stack.repository.tokens(connection_id)
    refreshes = len(
        [
            c
            for c in stack.standin.calls_to("/v1/oauth/token")
            if c.form["grant_type"] == ["refresh_token"]
        ]
    )
    # 27 minutes on: the 30-minute access token is within the 5-minute refresh margin.
    later = stack.worker.twin(clock=Later(timedelta(minutes=27)))
    assert await later.run_due() >= 1
    grants = [c.form["grant_type"] for c in stack.standin.calls_to("/v1/oauth/token")]
    # Refreshed while the old token still worked at the broker (no 401 forced it).
    assert grants.count(["refresh_token"]) > refreshes
    after = await stack.repository.tokens(connection_id)
    assert before is not None and after is not None
    assert after.sealed_access != before.sealed_access
    assert after.refresh_expire_time == before.refresh_expire_time
    assert (await user.connection(connection.name)).status == ACTIVE


async def test_refresh_token_near_its_end_requires_reauthorisation_ahead(stack: Stack) -> None:
    user = await stack.user()
    connection = await user.connect_schwab()
    await stack.worker.run_due()
    ends = connection.reauth_required_time.ToDatetime()
    # Six hours before the seventh day ends: within the 12-hour warning.
    later = stack.worker.twin(clock=Later(timedelta(days=7) - timedelta(hours=6)))
    await later.run_due()
    marked = await user.connection(connection.name)
    assert marked.status == REAUTH
    assert marked.reauth_required_time.ToDatetime() == ends
    assert "sign in" in marked.status_message
    reply = await user.brokerage.SyncPortfolio(pb.SyncPortfolioRequest(connection=connection.name))
    assert [s.state for s in reply.syncs] == [connection_pb2.SYNC_STATE_FAILED]
    # Re-authorising brings it back with a new end time.
    again = await user.connect_schwab(connection=connection.name)
    assert again.name == connection.name
    await stack.worker.run_due()
    back = await user.connection(connection.name)
    assert back.status == ACTIVE
    assert back.reauth_required_time.ToDatetime() >= ends


async def test_access_withdrawn_at_the_broker_is_revoked_at_once(stack: Stack) -> None:
    user = await stack.user()
    connection = await user.connect_schwab()
    await stack.worker.run_due()
    stack.standin.expire_access_tokens()
    stack.standin.kill_refresh_tokens()
    synced = await _sync(stack, user, connection.name)
    assert synced.status == connection_pb2.CONNECTION_STATUS_REVOKED, synced.status_message
    assert "withdrawn" in synced.status_message
    assert synced.last_sync_result == connection_pb2.SYNC_STATE_FAILED
    # The last synced data stays readable.
    accounts = await user.brokerage.ListAccounts(pb.ListAccountsRequest(parent=connection.name))
    assert len(accounts.accounts) == 2


async def test_a_failed_sync_keeps_the_previous_snapshot(stack: Stack) -> None:
    user = await stack.user()
    connection = await user.connect_schwab()
    await stack.worker.run_due()
    good = await user.connection(connection.name)
    portfolio = await user.brokerage.GetPortfolio(pb.GetPortfolioRequest(name="users/me/portfolio"))
    history = await _transactions(user)
    # Accounts (changed at the broker) arrive, then transactions fail: nothing is written.
    account = stack.standin.accounts[0]["securitiesAccount"]
    cash_before = json.dumps(stack.standin.accounts)
    account["currentBalances"]["cashBalance"] = 1.0
    stack.standin.faults.append(Fault(status=400, path="/transactions"))
    try:
        failed = await _sync(stack, user, connection.name)
    finally:
        stack.standin.accounts = json.loads(cash_before)
        stack.standin.faults.clear()
    assert failed.status == ERROR
    assert failed.last_sync_result == connection_pb2.SYNC_STATE_FAILED
    assert failed.last_sync_error_message
    assert failed.last_successful_sync_time == good.last_successful_sync_time
    again = await user.brokerage.GetPortfolio(pb.GetPortfolioRequest(name="users/me/portfolio"))
    assert again.portfolio.balances.cash == portfolio.portfolio.balances.cash
    assert [p.symbol for p in again.portfolio.positions] == [
        p.symbol for p in portfolio.portfolio.positions
    ]
    assert await _transactions(user) == history


class _Tracking:
    """Wraps a connector, recording syncs of one login overlapping in time."""

    def __init__(self, inner: BrokerConnector, inflight: set[str], overlaps: list[str]) -> None:
        self._inner = inner
        self._inflight = inflight
        self._overlaps = overlaps

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def list_accounts(self, access_token: str) -> list[BrokerAccount]:
        if access_token in self._inflight:
            self._overlaps.append(access_token)
        self._inflight.add(access_token)
        try:
            # Yield to the other worker a few times while "fetching".
            for _ in range(5):
                await asyncio.sleep(0)
            return await self._inner.list_accounts(access_token)
        finally:
            self._inflight.discard(access_token)


async def test_two_workers_never_sync_one_connection_at_once(stack: Stack) -> None:
    users = [await stack.user() for _ in range(6)]
    # A clean slate: what earlier tests left due is synced first.
    await stack.worker.run_due()
    names = [(await u.connect_paper()).name for u in users]
    inflight: set[str] = set()
    overlaps: list[str] = []
    connectors = {k: _Tracking(v, inflight, overlaps) for k, v in stack.worker.connectors.items()}
    one = stack.worker.twin(connectors=connectors)  # type: ignore[arg-type]
    two = stack.worker.twin(connectors=connectors)  # type: ignore[arg-type]
    counts = await asyncio.gather(one.run_due(), two.run_due())
    assert sum(counts) == len(names)
    assert overlaps == []
    for user, name in zip(users, names, strict=True):
        assert (await user.connection(name)).status == ACTIVE


async def test_minimum_interval_between_syncs(stack: Stack) -> None:
    user = await stack.user()
    connection = await user.connect_paper()
    await stack.worker.run_due()
    strict = stack.service.twin(settings=BrokerageSettings(min_sync_interval=timedelta(seconds=60)))
    with pytest.raises(errors.ResourceExhausted) as refused:
        await strict.sync(user.user_id, connection.name)
    assert refused.value.retry_after is not None
    assert timedelta(0) < refused.value.retry_after <= timedelta(seconds=60)
    # A sync queued or running is returned instead of another.
    first = await user.brokerage.SyncPortfolio(pb.SyncPortfolioRequest(connection=connection.name))
    second = await user.brokerage.SyncPortfolio(
        pb.SyncPortfolioRequest(connection="users/me/connections/-")
    )
    assert [s.state for s in first.syncs] == [connection_pb2.SYNC_STATE_QUEUED]
    assert list(second.syncs) == list(first.syncs)
    await stack.worker.run_due()


async def test_no_plaintext_token_at_rest(stack: Stack) -> None:
    user = await stack.user()
    await user.connect_schwab()
    await user.connect_paper()
    await stack.worker.run_due()
    with stack.standin.lock:
        secrets = [*stack.standin._access, *stack.standin._refresh]
    secrets.append("paper.v1.")
    async with stack.running.deps.database.engine.connect() as conn:
        for table in TABLES:
            rows = (await conn.execute(text(f"SELECT * FROM {table}"))).all()
            dump = repr(rows)
            for secret in secrets:
                assert secret not in dump, table
                assert base64.b64encode(secret.encode()).decode() not in dump, table


async def test_key_rotation_reseals_every_token(stack: Stack) -> None:
    user = await stack.user()
    connection = await user.connect_schwab()
    connection_id = connection.name.rsplit("/", 1)[1]
    configured = stack.running.deps.settings.env["OPTIX_BROKERAGE_TOKEN_KEYS"]
    old = TokenKey("k1", base64.b64decode(configured.split(":", 1)[1]))
    new = TokenKey("k2", b"n" * 32)
    box = TokenBox([new, old])
    report = await reseal_all(stack.repository, box)
    assert report.unreadable == [] and report.resealed >= 2
    again = await reseal_all(stack.repository, box)
    assert again.resealed == 0
    async with stack.running.deps.database.session() as session:
        for row in await session.scalars(select(TokenRow)):
            assert row.sealed_access.startswith("k2:") and row.sealed_refresh.startswith("k2:")
    sealed = await stack.repository.tokens(connection_id)
    assert sealed is not None
    tokens = TokenVault(TokenBox([new])).open(connection_id, sealed)
    assert tokens.access_token.startswith("AT-")
    # Back to the server's key, so the other tests' syncs still open their tokens.
    await reseal_all(stack.repository, TokenBox([old, new]))


async def test_background_worker_runs_queued_syncs(
    db_kind: str, tmp_path: Path, package_standin: StandIn
) -> None:
    async with brokerage_stack(
        db_kind, tmp_path, package_standin, OPTIX_BROKERAGE_SYNC_WORKER="true"
    ) as live:
        user = await live.user()
        connection = await user.connect_paper()
        async with asyncio.timeout(20):
            # CompleteConnection woke the worker; each finished pass is a chance to look.
            while (await user.connection(connection.name)).status != ACTIVE:
                await live.worker.next_pass()
        assert (await user.connection(connection.name)).account_count == 1
