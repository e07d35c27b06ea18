"""ListWatchlists paging: page sizes, page tokens that cannot be forged or reused elsewhere, and
keyset stability while lists are created and deleted between pages."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio

from optix.watchlist.v1 import watchlist_pb2, watchlist_service_pb2
from optix_server.watchlist.config import WatchlistSettings
from tests.watchlist.harness import (
    BASIC,
    WITH_QUOTES,
    Account,
    Stack,
    Watchlist,
    expect,
    invalid,
    watchlist_stack,
)

pytestmark = pytest.mark.asyncio(loop_scope="package")

# Far above the default 20, for users with a thousand lists.
MANY = WatchlistSettings(max_lists_per_user=2000)
BATCH = 25
URLSAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@pytest_asyncio.fixture(scope="module", loop_scope="package")
async def big(db_kind: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """A server whose users may keep 2,000 lists."""
    async with watchlist_stack(
        db_kind, tmp_path_factory.mktemp(f"watchlist-big-{db_kind}"), watchlist=MANY
    ) as stack:
        yield stack


async def _create_many(owner: Account, count: int, prefix: str) -> list[Watchlist]:
    """`count` lists made through the API, BATCH at a time concurrently."""
    made: list[Watchlist] = []
    for start in range(0, count, BATCH):
        made.extend(
            await asyncio.gather(
                *(owner.create(f"{prefix} {i}") for i in range(start, min(count, start + BATCH)))
            )
        )
    return made


def _page(
    parent: str = "users/me",
    size: int = 0,
    token: str = "",
    view: watchlist_pb2.WatchlistView.ValueType = BASIC,
) -> watchlist_service_pb2.ListWatchlistsRequest:
    return watchlist_service_pb2.ListWatchlistsRequest(
        parent=parent, page_size=size, page_token=token, view=view
    )


def _created(watchlist: Watchlist) -> tuple[int, int]:
    return (watchlist.create_time.seconds, watchlist.create_time.nanos)


async def test_page_size_default_cap_and_exact(big: Stack) -> None:
    owner = await big.account()
    await owner.default()
    await _create_many(owner, 129, "list")
    everything = await owner.lists()
    assert len(everything) == 130

    default_page = await owner.wl.ListWatchlists(_page())
    assert len(default_page.watchlists) == 50
    assert default_page.next_page_token
    for size in (100, 101, 2**31 - 1):
        capped = await owner.wl.ListWatchlists(_page(size=size))
        assert len(capped.watchlists) == 100, size
        assert list(capped.watchlists) == everything[:100]
    exact = await owner.wl.ListWatchlists(_page(size=7))
    assert list(exact.watchlists) == everything[:7]

    # Walking with the cap reaches the end in two pages; the last one has no token.
    second = await owner.wl.ListWatchlists(_page(size=100, token=capped.next_page_token))
    assert list(second.watchlists) == everything[100:]
    assert not second.next_page_token
    await invalid(owner.wl.ListWatchlists(_page(size=-1)), "page_size")


async def test_paging_through_a_thousand_lists_while_lists_come_and_go(big: Stack) -> None:
    owner = await big.account()
    default = await owner.default()
    originals = await _create_many(owner, 1000, "original")
    created_at = {w.name: _created(w) for w in [default, *originals]}
    rng = random.Random(20240621)
    unseen_victims = [w.name for w in rng.sample(originals[500:], 60)]
    deleted: set[str] = set()
    made_meanwhile: list[str] = []
    seen: list[Watchlist] = []
    size = 37
    token = ""
    pages = 0
    while True:
        reply = await owner.wl.ListWatchlists(_page(size=size, token=token))
        pages += 1
        assert len(reply.watchlists) <= size
        seen.extend(reply.watchlists)
        token = reply.next_page_token
        if not token:
            break
        assert pages < 60, "paging does not end"
        # Between pages: new lists, and deletions ahead of, behind and among the new ones.
        made_meanwhile.extend(w.name for w in await _create_many(owner, 2, f"new {pages}"))
        seen_names = {w.name for w in seen}
        # Once paging has passed a victim it is no longer ahead: only unseen ones are.
        ahead = [n for n in unseen_victims if n not in seen_names]
        unseen_victims = ahead[:-1]
        behind = rng.choice([w.name for w in seen[1:] if w.name not in deleted])
        doomed = [*ahead[-1:], behind, made_meanwhile[-2]]
        for name in doomed:
            await owner.wl.DeleteWatchlist(watchlist_service_pb2.DeleteWatchlistRequest(name=name))
            deleted.add(name)

    names = [w.name for w in seen]
    repeated = {n for n in names if names.count(n) > 1}
    assert not repeated, f"{len(repeated)} lists came back twice"
    throughout = [default.name] + [w.name for w in originals if w.name not in deleted]
    skipped = set(throughout) - set(names)
    assert not skipped, f"{len(skipped)} lists that existed throughout were skipped"
    assert names[0] == default.name
    # Lists present throughout come in creation order (the rest may interleave at the end).
    stayed = [n for n in names if n in set(throughout)]
    assert [created_at[n] for n in stayed] == sorted(created_at[n] for n in stayed)
    assert pages >= 1000 // size


async def test_a_page_token_is_replayable_with_the_same_request(stack: Stack) -> None:
    owner = await stack.account()
    await owner.default()
    for i in range(4):
        await owner.create(f"list {i}")
    first = await owner.wl.ListWatchlists(_page(size=2))
    once = await owner.wl.ListWatchlists(_page(size=2, token=first.next_page_token))
    twice = await owner.wl.ListWatchlists(_page(size=2, token=first.next_page_token))
    assert once == twice
    assert [w.name for w in [*first.watchlists, *once.watchlists]] == [
        w.name for w in (await owner.lists())[:4]
    ]


def _tampered(token: str) -> list[str]:
    """Tokens that differ from `token` in one or a few characters, or in length."""
    variants: list[str] = []
    # The last character may carry only padding bits: change the ones that carry data.
    for position in sorted({0, 1, len(token) // 3, len(token) // 2, len(token) - 2}):
        current = token[position]
        replacement = URLSAFE[(URLSAFE.index(current) + 17) % 64] if current in URLSAFE else "A"
        variants.append(token[:position] + replacement + token[position + 1 :])
    variants += [
        token[:-4],
        token + "AAAA",
        token[::-1],
        token.upper() if token.upper() != token else token.lower(),
        "AAAA" + token[4:],
        "not a page token",
        "W10",  # base64 of "[]": a bare cursor without a signature
        "%%%%",
        "é",
    ]
    return [v for v in variants if v != token]


async def test_page_tokens_cannot_be_forged(stack: Stack) -> None:
    owner = await stack.account()
    await owner.default()
    for i in range(4):
        await owner.create(f"list {i}")
    before = await owner.lists()
    genuine = (await owner.wl.ListWatchlists(_page(size=2))).next_page_token
    assert genuine
    for forged in _tampered(genuine):
        await invalid(owner.wl.ListWatchlists(_page(size=2, token=forged)), "page_token")
    # The genuine token still works, and nothing was written by the failures.
    follow = await owner.wl.ListWatchlists(_page(size=2, token=genuine))
    assert list(follow.watchlists) == before[2:4]
    assert await owner.lists() == before


async def test_page_tokens_are_bound_to_the_request_and_the_user(stack: Stack) -> None:
    alice = await stack.account()
    bob = await stack.account()
    await alice.default()
    await bob.default()
    for i in range(3):
        await alice.create(f"a {i}")
        await bob.create(f"b {i}")
    basic = (await alice.wl.ListWatchlists(_page(size=2))).next_page_token
    quoted = (await alice.wl.ListWatchlists(_page(size=2, view=WITH_QUOTES))).next_page_token
    assert basic and quoted
    # Another view than the call that produced it.
    await invalid(
        alice.wl.ListWatchlists(_page(size=2, token=basic, view=WITH_QUOTES)), "page_token"
    )
    await invalid(alice.wl.ListWatchlists(_page(size=2, token=quoted, view=BASIC)), "page_token")
    # Another user, with their own parent, by alias or id.
    await invalid(bob.wl.ListWatchlists(_page(size=2, token=basic)), "page_token")
    await invalid(bob.wl.ListWatchlists(_page(bob.parent, size=2, token=basic)), "page_token")
    # Bob's own token works for Bob, and not for Alice.
    bobs = (await bob.wl.ListWatchlists(_page(size=2))).next_page_token
    assert (await bob.wl.ListWatchlists(_page(size=2, token=bobs))).watchlists
    await invalid(alice.wl.ListWatchlists(_page(size=2, token=bobs)), "page_token")
    # Alice's token under Bob's name is another user's collection: NOT_FOUND, not a page.
    await expect(
        grpc.StatusCode.NOT_FOUND, alice.wl.ListWatchlists(_page(bob.parent, size=2, token=basic))
    )
