"""Watchlist CRUD with AIP semantics: the default list, List order, Get/Create/Update/Delete,
names with `me` and with the id, on SQLite and PostgreSQL."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import field_mask_pb2, timestamp_pb2

from optix.common.v1 import instrument_pb2
from optix.watchlist.v1 import watchlist_pb2, watchlist_service_pb2
from tests.watchlist.harness import (
    DEFAULT_NAME,
    METHODS,
    Stack,
    Watchlist,
    call,
    expect,
    names_in,
    request_for,
    symbols_of,
)

pytestmark = pytest.mark.asyncio(loop_scope="package")


def _id(watchlist: Watchlist) -> str:
    return watchlist.name.rsplit("/", 1)[1]


def _update(watchlist: Watchlist, *paths: str) -> watchlist_service_pb2.UpdateWatchlistRequest:
    return watchlist_service_pb2.UpdateWatchlistRequest(
        watchlist=watchlist, update_mask=field_mask_pb2.FieldMask(paths=list(paths))
    )


async def test_first_list_creates_the_default_once(stack: Stack) -> None:
    alice = await stack.account()
    first = await alice.lists()
    assert len(first) == 1
    default = first[0]
    assert default.display_name == DEFAULT_NAME
    assert default.is_default
    assert not default.items
    assert default.name.startswith(f"users/{alice.user_id}/watchlists/")
    assert default.etag
    assert default.HasField("create_time") and default.HasField("update_time")
    # Read again, by id and by alias: the same list, not a second default.
    again = await alice.wl.ListWatchlists(
        watchlist_service_pb2.ListWatchlistsRequest(parent=alice.parent)
    )
    assert list(again.watchlists) == first
    assert not again.next_page_token


async def test_first_create_also_creates_the_default_once(stack: Stack) -> None:
    alice = await stack.account()
    tech = await alice.create("Tech", ["AAPL"])
    assert not tech.is_default
    lists = await alice.lists()
    assert [w.display_name for w in lists] == [DEFAULT_NAME, "Tech"]
    assert [w.is_default for w in lists] == [True, False]
    await alice.create("Energy")
    assert [w.display_name for w in await alice.lists()] == [DEFAULT_NAME, "Tech", "Energy"]


async def test_list_order_is_default_first_then_creation(stack: Stack) -> None:
    alice = await stack.account()
    default = await alice.default()
    made = [await alice.create(name) for name in ("Zeta", "Alpha", "Mid")]
    assert [w.name for w in await alice.lists()] == [default.name, *(w.name for w in made)]
    # Making "Alpha" the default puts it first; the rest stay in creation order.
    await alice.wl.UpdateWatchlist(
        _update(Watchlist(name=made[1].name, is_default=True), "is_default")
    )
    order = await alice.lists()
    assert [w.name for w in order] == [made[1].name, default.name, made[0].name, made[2].name]
    assert [w.is_default for w in order] == [True, False, False, False]
    created = [(w.create_time.seconds, w.create_time.nanos) for w in order[1:]]
    assert created == sorted(created)


async def test_create_normalises_and_ignores_output_only_fields(stack: Stack) -> None:
    alice = await stack.account()
    default = await alice.default()
    reply = await alice.wl.CreateWatchlist(
        watchlist_service_pb2.CreateWatchlistRequest(
            parent="users/me",
            watchlist=Watchlist(
                name="users/me/watchlists/chosen-by-client",
                display_name="  Semis  ",
                items=[
                    watchlist_pb2.WatchlistItem(symbol=s) for s in ("nvda", " AMD ", "NVDA", "aapl")
                ],
                is_default=True,
                etag='W/"forged"',
                create_time=timestamp_pb2.Timestamp(seconds=1),
            ),
        )
    )
    made = reply.watchlist
    assert made.name.startswith(f"users/{alice.user_id}/watchlists/")
    assert _id(made) != "chosen-by-client"
    assert made.display_name == "Semis"
    assert symbols_of(made) == ["NVDA", "AMD", "AAPL"]
    assert all(item.instrument.type == instrument_pb2.INSTRUMENT_TYPE_EQUITY for item in made.items)
    assert all(item.HasField("add_time") for item in made.items)
    assert not made.is_default
    assert made.etag and made.etag != 'W/"forged"'
    assert made.create_time.seconds > 1
    assert (await alice.default()).name == default.name
    assert await alice.get(made.name) == made


async def test_names_accept_me_and_the_id_and_responses_carry_the_id(stack: Stack) -> None:
    alice = await stack.account()
    made = await alice.create("Tech", ["AAPL", "MSFT"])
    by_id = await alice.get(made.name)
    by_me = await alice.get(alice.name(_id(made), user="me"))
    assert by_me == by_id == made
    by_me_list = await alice.wl.ListWatchlists(
        watchlist_service_pb2.ListWatchlistsRequest(parent="users/me")
    )
    by_id_list = await alice.wl.ListWatchlists(
        watchlist_service_pb2.ListWatchlistsRequest(parent=alice.parent)
    )
    assert by_me_list == by_id_list
    # Every RPC, addressed with `me`, answers with names that carry the user id.
    for method in METHODS:
        target = await alice.create("Target", ["AAPL", "MSFT"])
        reply = await call(
            alice,
            method,
            request_for(
                method, name=alice.name(_id(target), user="me"), parent="users/me", symbol="MSFT"
            ),
        )
        for name in names_in(reply):
            assert name.startswith(f"users/{alice.user_id}/watchlists/"), (method.name, name)


async def test_update_display_name_only_touches_the_name(stack: Stack) -> None:
    alice = await stack.account()
    made = await alice.create("Tech", ["AAPL", "MSFT"])
    reply = await alice.wl.UpdateWatchlist(
        _update(
            Watchlist(name=made.name, display_name=" Big Tech ", items=[], is_default=True),
            "display_name",
        )
    )
    updated = reply.watchlist
    assert updated.display_name == "Big Tech"
    assert updated.items == made.items
    assert not updated.is_default
    assert updated.create_time == made.create_time
    assert updated.etag != made.etag
    assert (updated.update_time.seconds, updated.update_time.nanos) >= (
        made.update_time.seconds,
        made.update_time.nanos,
    )
    assert await alice.get(made.name) == updated


async def test_update_items_replaces_and_reorders_keeping_add_time(stack: Stack) -> None:
    alice = await stack.account()
    made = await alice.create("Tech", ["AAPL", "MSFT", "NVDA"])
    added = {item.symbol: item.add_time for item in made.items}
    new_items = [watchlist_pb2.WatchlistItem(symbol=s) for s in ("nvda", "SPY", "AAPL", "spy")]
    reply = await alice.wl.UpdateWatchlist(
        _update(Watchlist(name=made.name, display_name="ignored", items=new_items), "items")
    )
    updated = reply.watchlist
    assert symbols_of(updated) == ["NVDA", "SPY", "AAPL"]
    assert updated.display_name == "Tech"
    kept = {item.symbol: item.add_time for item in updated.items}
    assert kept["NVDA"] == added["NVDA"]
    assert kept["AAPL"] == added["AAPL"]
    assert (kept["SPY"].seconds, kept["SPY"].nanos) >= (
        added["AAPL"].seconds,
        added["AAPL"].nanos,
    )
    assert await alice.get(made.name) == updated
    cleared = await alice.wl.UpdateWatchlist(_update(Watchlist(name=made.name), "items"))
    assert not cleared.watchlist.items


async def test_update_several_fields_at_once(stack: Stack) -> None:
    alice = await stack.account()
    made = await alice.create("Tech", ["AAPL"])
    reply = await alice.wl.UpdateWatchlist(
        _update(
            Watchlist(
                name=made.name,
                display_name="Main",
                items=[watchlist_pb2.WatchlistItem(symbol="msft")],
                is_default=True,
            ),
            "display_name",
            "items",
            "is_default",
        )
    )
    assert reply.watchlist.display_name == "Main"
    assert symbols_of(reply.watchlist) == ["MSFT"]
    assert reply.watchlist.is_default
    assert await alice.get(made.name) == reply.watchlist


async def test_is_default_true_moves_the_flag(stack: Stack) -> None:
    alice = await stack.account()
    old = await alice.default()
    new = await alice.create("Trading", ["AAPL"])
    reply = await alice.wl.UpdateWatchlist(
        _update(Watchlist(name=new.name, is_default=True), "is_default")
    )
    assert reply.watchlist.is_default
    assert symbols_of(reply.watchlist) == ["AAPL"]
    assert reply.watchlist.etag != new.etag
    lists = {w.name: w for w in await alice.lists()}
    assert [n for n, w in lists.items() if w.is_default] == [new.name]
    assert not lists[old.name].is_default
    assert lists[old.name].etag != old.etag, "the old default changed, so its etag must too"
    assert lists[new.name] == reply.watchlist
    # Setting it again on the default is harmless and keeps exactly one default.
    again = await alice.wl.UpdateWatchlist(
        _update(Watchlist(name=new.name, is_default=True), "is_default")
    )
    assert again.watchlist.is_default
    assert [w.name for w in await alice.lists() if w.is_default] == [new.name]


async def test_delete(stack: Stack) -> None:
    alice = await stack.account()
    keep = await alice.create("Keep")
    gone = await alice.create("Gone", ["AAPL"])
    reply = await alice.wl.DeleteWatchlist(
        watchlist_service_pb2.DeleteWatchlistRequest(name=gone.name)
    )
    assert reply == watchlist_service_pb2.DeleteWatchlistResponse()
    await expect(grpc.StatusCode.NOT_FOUND, alice.get(gone.name))
    await expect(
        grpc.StatusCode.NOT_FOUND,
        alice.wl.DeleteWatchlist(watchlist_service_pb2.DeleteWatchlistRequest(name=gone.name)),
    )
    assert [w.name for w in await alice.lists()][1:] == [keep.name]


async def test_the_default_cannot_be_deleted_until_another_is_default(stack: Stack) -> None:
    alice = await stack.account()
    default = await alice.default()
    other = await alice.create("Other")
    before = await alice.lists()
    error = await expect(
        grpc.StatusCode.FAILED_PRECONDITION,
        alice.wl.DeleteWatchlist(watchlist_service_pb2.DeleteWatchlistRequest(name=default.name)),
    )
    assert error.message
    assert await alice.lists() == before
    # With its current etag it is still refused.
    await expect(
        grpc.StatusCode.FAILED_PRECONDITION,
        alice.wl.DeleteWatchlist(
            watchlist_service_pb2.DeleteWatchlistRequest(name=default.name, etag=default.etag)
        ),
    )
    await alice.wl.UpdateWatchlist(
        _update(Watchlist(name=other.name, is_default=True), "is_default")
    )
    await alice.wl.DeleteWatchlist(watchlist_service_pb2.DeleteWatchlistRequest(name=default.name))
    await expect(
        grpc.StatusCode.FAILED_PRECONDITION,
        alice.wl.DeleteWatchlist(watchlist_service_pb2.DeleteWatchlistRequest(name=other.name)),
    )
    assert [(w.name, w.is_default) for w in await alice.lists()] == [(other.name, True)]


async def test_unknown_ids_are_not_found(stack: Stack) -> None:
    alice = await stack.account()
    await alice.default()
    for name in (
        alice.name("0123456789abcdef0123456789abcdef"),
        "users/me/watchlists/0123456789abcdef0123456789abcdef",
        "users/me/watchlists/no.such-id",
    ):
        await expect(grpc.StatusCode.NOT_FOUND, alice.get(name))
