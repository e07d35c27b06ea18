"""Another user's watchlists are NOT_FOUND, and calls without a user's valid token UNAUTHENTICATED,
on every RPC of the service (from its descriptor, so a new method is covered); nothing written."""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.protobuf.descriptor import MethodDescriptor

from tests.watchlist.harness import (
    METHODS,
    Account,
    Stack,
    call,
    expect,
    request_for,
    takes_etag,
)

pytestmark = pytest.mark.asyncio(loop_scope="package")


def _id(name: str) -> str:
    return name.rsplit("/", 1)[1]


async def _call_as(
    account: Account, method: MethodDescriptor, name: str, parent: str, etag: str
) -> None:
    await call(
        account, method, request_for(method, name=name, parent=parent, etag=etag, symbol="MSFT")
    )


@pytest.mark.parametrize("method", METHODS, ids=lambda m: str(m.name))
async def test_another_users_watchlist_is_not_found(stack: Stack, method: MethodDescriptor) -> None:
    alice = await stack.account()
    bob = await stack.account()
    await alice.default()
    await bob.default()
    target = await alice.create("Alice's", ["AAPL", "MSFT"])
    target_id = _id(target.name)
    guess = uuid.uuid4().hex
    alice_before = await alice.lists()
    bob_before = await bob.lists()

    aims = {
        "her name": alice.name(target_id),
        "her id under me": alice.name(target_id, user="me"),
        "her id under his id": bob.name(target_id),
        "a guessed id under her name": alice.name(guess),
        "a guessed id under me": bob.name(guess, user="me"),
    }
    for name in aims.values():
        for etag in ("", target.etag) if takes_etag(method) else ("",):
            await expect(grpc.StatusCode.NOT_FOUND, _call_as(bob, method, name, alice.parent, etag))

    # Her real list and a made-up one under her name are refused alike: nothing is revealed.
    real = await expect(
        grpc.StatusCode.NOT_FOUND, _call_as(bob, method, aims["her name"], alice.parent, "")
    )
    made_up = await expect(
        grpc.StatusCode.NOT_FOUND,
        _call_as(bob, method, aims["a guessed id under her name"], alice.parent, ""),
    )
    assert real.message.replace(target_id, "ID") == made_up.message.replace(guess, "ID")
    assert len(real.details) == len(made_up.details)

    assert await alice.lists() == alice_before
    assert await bob.lists() == bob_before
    # The same request from Alice, for her own list, goes through: the refusals were ownership.
    await _call_as(alice, method, target.name, "users/me", target.etag)


@pytest.mark.parametrize("method", METHODS, ids=lambda m: str(m.name))
async def test_calls_without_a_users_token_are_unauthenticated(
    stack: Stack, method: MethodDescriptor
) -> None:
    alice = await stack.account()
    target = await alice.create("Tech", ["AAPL", "MSFT"])
    before = await alice.lists()
    request = request_for(method, name=target.name, parent=alice.parent, symbol="MSFT")
    token = await alice.client.tokens.access_token()
    assert token
    header, payload, signature = token.split(".")
    flipped = signature[:10] + ("B" if signature[10] == "A" else "A") + signature[11:]
    anonymous = stack.client().watchlist
    stub = getattr(anonymous, method.name)
    credentials: dict[str, tuple[tuple[str, str], ...]] = {
        "none": (),
        "garbage": (("authorization", "Bearer not-a-token"),),
        "bad signature": (("authorization", f"Bearer {header}.{payload}.{flipped}"),),
        "wrong scheme": (("authorization", f"Basic {token}"),),
        "service identity": stack.running.service_metadata(),
    }
    for kind, metadata in credentials.items():
        error = await expect(grpc.StatusCode.UNAUTHENTICATED, stub(request, metadata=metadata))
        assert error.message, kind
    assert await alice.lists() == before


async def test_a_signed_out_users_token_is_refused(stack: Stack) -> None:
    alice = await stack.account()
    target = await alice.create("Tech", ["AAPL"])
    token = await alice.client.tokens.access_token()
    await alice.client.logout()
    stale = (("authorization", f"Bearer {token}"),)
    anonymous = stack.client().watchlist
    for method in METHODS:
        stub = getattr(anonymous, method.name)
        request = request_for(method, name=target.name, parent="users/me", symbol="AAPL")
        await expect(grpc.StatusCode.UNAUTHENTICATED, stub(request, metadata=stale))
