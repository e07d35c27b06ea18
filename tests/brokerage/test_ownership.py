"""Another user's connections, accounts, positions, transactions and portfolio are NOT_FOUND on
every RPC of BrokerageService (enumerated from its descriptor, so a new method is covered), and
calls without a user's token are UNAUTHENTICATED; nothing is changed by a refused call."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from optix.brokerage.v1 import brokerage_service_pb2 as pb
from optix_client.client import OptixClient
from tests.brokerage.harness import METHODS, Stack, User
from tests.support.sdk_errors import expect

pytestmark = pytest.mark.asyncio(loop_scope="package")

# The provider catalogue is the same for everyone: it names no user's resource.
UNOWNED = {"ListProviders"}
# Aimed at a user alone (users/{user} or users/{user}/portfolio): only "her name" applies.
USER_ONLY = {"StartConnection", "CompleteConnection", "ListConnections", "GetPortfolio"}


def request_for(method: MethodDescriptor, *, user: str, connection: str, account: str) -> Message:
    """A `method` request aimed at `user`'s resources (`connection`, `account` ids), with only
    what else it needs to pass validation. A method that names nothing fails here."""
    request: Any = GetMessageClass(method.input_type)()
    fields = method.input_type.fields_by_name
    connection_name = f"users/{user}/connections/{connection}"
    account_name = f"{connection_name}/accounts/{account}"
    aimed = False
    if "name" in fields:
        request.name = (
            f"users/{user}/portfolio" if method.name == "GetPortfolio" else connection_name
        )
        aimed = True
    if "parent" in fields:
        request.parent = {
            "ListAccounts": connection_name,
            "ListPositions": account_name,
            "ListTransactions": account_name,
        }.get(method.name, f"users/{user}")
        aimed = True
    if "connection" in fields and method.name == "SyncPortfolio":
        request.connection = connection_name
        aimed = True
    if "provider" in fields:
        request.provider = "providers/paper"
    if "state" in fields:
        request.state = "not-a-state"
    assert aimed, f"{method.full_name}: no name/parent/connection field to aim it with"
    message: Message = request
    return message


async def _snapshot(user: User) -> tuple[object, ...]:
    connections = await user.brokerage.ListConnections(pb.ListConnectionsRequest(parent="users/me"))
    accounts = await user.brokerage.ListAccounts(
        pb.ListAccountsRequest(parent="users/me/connections/-")
    )
    positions = await user.brokerage.ListPositions(
        pb.ListPositionsRequest(parent="users/me/connections/-/accounts/-", page_size=1000)
    )
    return (
        [(c.name, c.status, c.last_sync_time.seconds) for c in connections.connections],
        [a.name for a in accounts.accounts],
        [(p.account, p.symbol) for p in positions.positions],
    )


def _call(client: OptixClient, method: MethodDescriptor, request: Message) -> Any:
    return getattr(client.brokerage, method.name)(request)


# Every method that names a user's resource (the provider catalogue belongs to no user; the
# token test below still covers it).
OWNED = [m for m in METHODS if m.name not in UNOWNED]


@pytest.mark.parametrize("method", OWNED, ids=lambda m: str(m.name))
async def test_another_users_resources_are_not_found(
    stack: Stack, method: MethodDescriptor
) -> None:
    alice, bob = await stack.user(), await stack.user()
    her = await alice.connect_paper()
    await stack.worker.run_due()
    connection_id = her.name.rsplit("/", 1)[1]
    accounts = await alice.brokerage.ListAccounts(pb.ListAccountsRequest(parent=her.name))
    account_id = accounts.accounts[0].name.rsplit("/", 1)[1]
    before = await _snapshot(alice)
    guess = uuid.uuid4().hex
    aims = {
        "her name": (alice.user_id, connection_id, account_id),
        "her ids under me": ("me", connection_id, account_id),
        "her ids under his id": (bob.user_id, connection_id, account_id),
        "her connection, a guessed account": ("me", connection_id, guess),
        "a guessed connection under her name": (alice.user_id, guess, guess),
    }
    for aim, (user, connection, account) in aims.items():
        if method.name in USER_ONLY and aim != "her name" and user != alice.user_id:
            continue  # aimed at bob himself
        request = request_for(method, user=user, connection=connection, account=account)
        await expect(grpc.StatusCode.NOT_FOUND, _call(bob.client, method, request))
    if method.name == "StartConnection":
        # Re-authorising her connection from his account.
        request = pb.StartConnectionRequest(
            parent="users/me", connection=f"users/me/connections/{connection_id}"
        )
        await expect(grpc.StatusCode.NOT_FOUND, bob.brokerage.StartConnection(request))
    assert await _snapshot(alice) == before
    assert await _snapshot(bob) == ([], [], [])
    # Her own call with the same aim goes through: the refusals were about ownership.
    own = request_for(method, user="me", connection=connection_id, account=account_id)
    if method.name == "CompleteConnection":
        await expect(grpc.StatusCode.FAILED_PRECONDITION, _call(alice.client, method, own))
    else:
        await _call(alice.client, method, own)


@pytest.mark.parametrize("method", METHODS, ids=lambda m: str(m.name))
async def test_calls_without_a_users_token_are_unauthenticated(
    stack: Stack, method: MethodDescriptor
) -> None:
    owner = await stack.user()
    anonymous = OptixClient(stack.running.address)
    stack.clients.append(anonymous)
    request = (
        pb.ListProvidersRequest()
        if method.name in UNOWNED
        else request_for(method, user=owner.user_id, connection="c", account="a")
    )
    await expect(grpc.StatusCode.UNAUTHENTICATED, _call(anonymous, method, request))
