"""Providers, the OAuth dance against the Schwab stand-in, the paper broker in one call, and
connections listed, read and deleted; bad input gets the codes the comments name and stores
nothing."""

from __future__ import annotations

import grpc
import pytest
from sqlalchemy import func, select

from optix.brokerage.v1 import brokerage_service_pb2 as pb
from optix.brokerage.v1 import connection_pb2, provider_pb2
from optix_server.brokerage.config import BrokerageSettings, ConnectorSettings
from optix_server.brokerage.connectors.factory import build_connectors
from optix_server.brokerage.models import (
    AccountRow,
    ConnectionRow,
    PositionRow,
    StartRow,
    TokenRow,
    TransactionRow,
)
from optix_server.infra import errors
from optix_server.infra.auth.clock import SystemClock
from tests.brokerage.harness import OTHER_REDIRECT, Stack, User
from tests.support.schwab_standin import Fault
from tests.support.sdk_errors import expect

pytestmark = pytest.mark.asyncio(loop_scope="package")

ACTIVE = connection_pb2.CONNECTION_STATUS_ACTIVE
SYNCING = connection_pb2.CONNECTION_STATUS_SYNCING


async def _rows(stack: Stack, user: User) -> tuple[int, int]:
    """(connections, pending starts) stored for the user."""
    async with stack.running.deps.database.session() as session:
        connections = await session.scalar(
            select(func.count()).where(ConnectionRow.user_id == user.user_id)
        )
        starts = await session.scalar(select(func.count()).where(StartRow.user_id == user.user_id))
    return int(connections or 0), int(starts or 0)


async def test_list_providers(stack: Stack) -> None:
    user = await stack.user()
    reply = await user.brokerage.ListProviders(pb.ListProvidersRequest())
    by_name = {p.name: p for p in reply.providers}
    assert list(by_name) == ["providers/paper", "providers/schwab"]
    paper, schwab = by_name["providers/paper"], by_name["providers/schwab"]
    assert paper.auth_kind == provider_pb2.AUTH_KIND_NONE and paper.enabled
    assert not paper.HasField("authorization_lifetime")
    assert schwab.auth_kind == provider_pb2.AUTH_KIND_OAUTH2_AUTHORIZATION_CODE
    assert schwab.enabled and schwab.pkce
    assert schwab.authorization_lifetime.seconds == 7 * 24 * 3600
    first = await user.brokerage.ListProviders(pb.ListProvidersRequest(page_size=1))
    assert [p.name for p in first.providers] == ["providers/paper"]
    second = await user.brokerage.ListProviders(
        pb.ListProvidersRequest(page_size=1, page_token=first.next_page_token)
    )
    assert [p.name for p in second.providers] == ["providers/schwab"]
    assert second.next_page_token == ""


async def test_paper_connects_in_one_call_and_syncs(stack: Stack) -> None:
    user = await stack.user()
    connection = await user.connect_paper()
    assert connection.status == SYNCING
    assert connection.provider == "providers/paper"
    assert connection.display_name == "Paper trading"
    assert connection.name.startswith(f"users/{user.user_id}/connections/")
    assert not connection.HasField("reauth_required_time")
    await stack.worker.run_due()
    synced = await user.connection(connection.name)
    assert synced.status == ACTIVE
    assert synced.last_sync_result == connection_pb2.SYNC_STATE_DONE
    assert synced.account_count == 1
    accounts = await user.brokerage.ListAccounts(
        pb.ListAccountsRequest(parent="users/me/connections/-")
    )
    assert [a.name.rsplit("/accounts/", 1)[0] for a in accounts.accounts] == [connection.name]
    assert len(accounts.accounts[0].account_number_last4) == 4


async def test_full_oauth_dance_against_the_standin(stack: Stack) -> None:
    user = await stack.user()
    connection = await user.connect_schwab(display_name="My Schwab")
    assert connection.display_name == "My Schwab"
    assert connection.status == SYNCING
    assert connection.HasField("reauth_required_time")
    token_call = stack.standin.calls_to("/v1/oauth/token")[-1]
    assert token_call.form["grant_type"] == ["authorization_code"]
    # The verifier was kept server-side and sent with the exchange.
    assert token_call.form["code_verifier"][0]
    await stack.worker.run_due()
    synced = await user.connection(connection.name)
    assert synced.status == ACTIVE, (synced.status_message, synced.last_sync_error_message)
    assert synced.account_count == 2
    accounts = await user.brokerage.ListAccounts(pb.ListAccountsRequest(parent=connection.name))
    assert sorted(a.account_number_last4 for a in accounts.accounts) == ["4321", "5678"]
    listed = await user.brokerage.ListConnections(pb.ListConnectionsRequest(parent="users/me"))
    assert [c.name for c in listed.connections] == [connection.name]


async def test_state_is_single_use_and_bound_to_its_user(stack: Stack) -> None:
    alice, bob = await stack.user(), await stack.user()
    code, state = await alice.schwab_code()
    # Bob redeeming Alice's state is refused, and it is consumed: Alice cannot use it either.
    await expect(
        grpc.StatusCode.FAILED_PRECONDITION,
        bob.brokerage.CompleteConnection(
            pb.CompleteConnectionRequest(parent="users/me", code=code, state=state)
        ),
    )
    await expect(
        grpc.StatusCode.FAILED_PRECONDITION,
        alice.brokerage.CompleteConnection(
            pb.CompleteConnectionRequest(parent="users/me", code=code, state=state)
        ),
    )
    code, state = await alice.schwab_code()
    request = pb.CompleteConnectionRequest(parent="users/me", code=code, state=state)
    await alice.brokerage.CompleteConnection(request)
    await expect(grpc.StatusCode.FAILED_PRECONDITION, alice.brokerage.CompleteConnection(request))
    forged = pb.CompleteConnectionRequest(parent="users/me", code=code, state="forged-state")
    await expect(grpc.StatusCode.FAILED_PRECONDITION, alice.brokerage.CompleteConnection(forged))
    assert await _rows(stack, bob) == (0, 0)
    assert (await _rows(stack, alice))[0] == 1


async def test_bad_starts(stack: Stack) -> None:
    user = await stack.user()
    cases = {
        "unknown provider": pb.StartConnectionRequest(parent="users/me", provider="providers/nope"),
        "malformed provider": pb.StartConnectionRequest(parent="users/me", provider="schwab"),
        "no provider": pb.StartConnectionRequest(parent="users/me"),
        "redirect not configured": pb.StartConnectionRequest(
            parent="users/me",
            provider="providers/schwab",
            redirect_uri="https://evil.example.com/cb",
        ),
        "long name": pb.StartConnectionRequest(
            parent="users/me", provider="providers/paper", display_name="x" * 65
        ),
    }
    for case, request in cases.items():
        error = await expect(
            grpc.StatusCode.INVALID_ARGUMENT, user.brokerage.StartConnection(request)
        )
        assert error.message, case
    # A configured second redirect URI is accepted and lands in the URL.
    started = await user.brokerage.StartConnection(
        pb.StartConnectionRequest(
            parent="users/me", provider="providers/schwab", redirect_uri=OTHER_REDIRECT
        )
    )
    assert "redirect_uri=https%3A%2F%2Fapp.example.com" in started.authorize_url
    assert await _rows(stack, user) == (0, 1)


async def test_provider_failures_store_nothing(stack: Stack) -> None:
    user = await stack.user()
    faults = {
        grpc.StatusCode.UNAVAILABLE: [
            Fault(kind="html", status=502, path="/v1/oauth/token"),
            Fault(kind="malformed", status=200, path="/v1/oauth/token"),
        ],
        grpc.StatusCode.FAILED_PRECONDITION: [Fault(status=400, path="/v1/oauth/token")],
    }
    for code_wanted, planted in faults.items():
        for fault in planted:
            code, state = await user.schwab_code()
            # Enough copies that the connector's and the SDK's retries all meet the fault.
            stack.standin.faults.extend([fault] * 20)
            request = pb.CompleteConnectionRequest(parent="users/me", code=code, state=state)
            await expect(code_wanted, user.brokerage.CompleteConnection(request))
            stack.standin.faults.clear()
            if code_wanted == grpc.StatusCode.UNAVAILABLE:
                # The provider was not reached: the same call works once it is back.
                assert await _rows(stack, user) == (0, 1)
                done = await user.brokerage.CompleteConnection(request)
                await user.brokerage.DeleteConnection(
                    pb.DeleteConnectionRequest(name=done.connection.name)
                )
    # A wrong code is the provider rejecting it.
    _, state = await user.schwab_code()
    await expect(
        grpc.StatusCode.FAILED_PRECONDITION,
        user.brokerage.CompleteConnection(
            pb.CompleteConnectionRequest(parent="users/me", code="not-a-code", state=state)
        ),
    )
    # An OAuth provider needs the code.
    _, state = await user.schwab_code()
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        user.brokerage.CompleteConnection(
            pb.CompleteConnectionRequest(parent="users/me", state=state)
        ),
    )
    assert await _rows(stack, user) == (0, 0)


async def test_delete_revokes_and_removes_every_row(stack: Stack) -> None:
    user = await stack.user()
    connection = await user.connect_schwab()
    await stack.worker.run_due()
    revoked_before = len(stack.standin.revoked)
    await user.brokerage.DeleteConnection(pb.DeleteConnectionRequest(name=connection.name))
    assert len(stack.standin.revoked) == revoked_before + 1
    await expect(
        grpc.StatusCode.NOT_FOUND,
        user.brokerage.GetConnection(pb.GetConnectionRequest(name=connection.name)),
    )
    connection_id = connection.name.rsplit("/", 1)[1]
    async with stack.running.deps.database.session() as session:
        for table in (AccountRow, PositionRow, TransactionRow):
            count = await session.scalar(
                select(func.count()).where(table.connection_id == connection_id)
            )
            assert count == 0, table.__tablename__
        assert await session.get(TokenRow, connection_id) is None
    await expect(
        grpc.StatusCode.NOT_FOUND,
        user.brokerage.DeleteConnection(pb.DeleteConnectionRequest(name=connection.name)),
    )


async def test_reauthorise_an_existing_connection(stack: Stack) -> None:
    user = await stack.user()
    connection = await user.connect_schwab()
    again = await user.connect_schwab(connection=connection.name)
    assert again.name == connection.name
    listed = await user.brokerage.ListConnections(pb.ListConnectionsRequest(parent="users/me"))
    assert [c.name for c in listed.connections] == [connection.name]


async def test_connection_limit(stack: Stack) -> None:
    user = await stack.user()
    await user.connect_paper()
    strict = stack.service.twin(settings=BrokerageSettings(max_connections_per_user=1))
    with pytest.raises(errors.ResourceExhausted):
        await strict.start(
            user.user_id,
            "users/me",
            provider="providers/paper",
            connection="",
            redirect_uri="",
            display_name="",
        )
    # A start made before the limit was reached is refused at completion, storing nothing.
    started = await stack.service.start(
        user.user_id,
        "users/me",
        provider="providers/paper",
        connection="",
        redirect_uri="",
        display_name="",
    )
    with pytest.raises(errors.ResourceExhausted):
        await strict.complete(user.user_id, "users/me", code="", state=started.state)
    assert (await _rows(stack, user))[0] == 1


async def test_a_disabled_provider_cannot_start(stack: Stack) -> None:
    user = await stack.user()
    # No Schwab credentials and paper switched off: both listed, neither enabled.
    connectors = build_connectors(ConnectorSettings(paper_enabled=False), SystemClock())
    disabled = stack.service.twin(connectors=connectors)
    try:
        assert [p.enabled for p in disabled.providers(0, "").items] == [False, False]
        for provider in ("providers/paper", "providers/schwab"):
            with pytest.raises(errors.FailedPrecondition):
                await disabled.start(
                    user.user_id,
                    "users/me",
                    provider=provider,
                    connection="",
                    redirect_uri="",
                    display_name="",
                )
    finally:
        for connector in connectors.values():
            await connector.close()
    assert await _rows(stack, user) == (0, 0)


async def test_connections_and_accounts_page_oldest_first(stack: Stack) -> None:
    user = await stack.user()
    names = [(await user.connect_paper()).name for _ in range(3)]
    await stack.worker.run_due()
    first = await user.brokerage.ListConnections(
        pb.ListConnectionsRequest(parent="users/me", page_size=2)
    )
    rest = await user.brokerage.ListConnections(
        pb.ListConnectionsRequest(parent="users/me", page_size=2, page_token=first.next_page_token)
    )
    assert [c.name for c in [*first.connections, *rest.connections]] == names
    assert rest.next_page_token == ""
    accounts: list[str] = []
    token = ""
    while True:
        page = await user.brokerage.ListAccounts(
            pb.ListAccountsRequest(parent="users/me/connections/-", page_size=1, page_token=token)
        )
        accounts.extend(a.name for a in page.accounts)
        token = page.next_page_token
        if not token:
            break
    assert [a.rsplit("/accounts/", 1)[0] for a in accounts] == names
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        user.brokerage.ListConnections(pb.ListConnectionsRequest(parent="users/me", page_size=-1)),
    )
    other = await stack.user()
    # A token is bound to its caller.
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        other.brokerage.ListConnections(
            pb.ListConnectionsRequest(parent="users/me", page_token=first.next_page_token)
        ),
    )
