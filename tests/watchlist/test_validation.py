"""Bad input: INVALID_ARGUMENT with a field violation for each bad field, and nothing written."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from google.protobuf import field_mask_pb2

from optix.watchlist.v1 import watchlist_pb2, watchlist_service_pb2
from tests.watchlist.harness import Account, Stack, Watchlist, invalid, violations

pytestmark = pytest.mark.asyncio(loop_scope="package")

BAD_DISPLAY_NAMES = [
    "",
    "   ",
    "x" * 65,
    " " + "y" * 65 + " ",
    "tab\there",
    "new\nline",
    "nul\x00byte",
    "bell\x07",
    "escape\x1b[31m",
    "del\x7f",
    "c1\x85control",
]
MALFORMED_SYMBOLS = [
    "",
    "   ",
    "1ABC",
    "AAPL$",
    "A B",
    "TOOLONGTICKER",
    "AAPL  241301C00190000",  # month 13
    "AAPL  240230C00190000",  # 30 February
    "AAPL  240621X00190000",  # neither call nor put
    "AAPL  240621C0019000",  # strike of 7 digits
    "AAPL  240621C00000000",  # zero strike
    "TOOLONGROOT240621C00190000",
]


@pytest_asyncio.fixture(loop_scope="package")
async def alice(stack: Stack) -> AsyncIterator[Account]:
    """A user with a default list and one list holding AAPL and MSFT."""
    account = await stack.account()
    await account.default()
    await account.create("Tech", ["AAPL", "MSFT"])
    yield account


async def _tech(account: Account) -> Watchlist:
    return (await account.lists())[1]


def _update(watchlist: Watchlist, *paths: str) -> watchlist_service_pb2.UpdateWatchlistRequest:
    return watchlist_service_pb2.UpdateWatchlistRequest(
        watchlist=watchlist, update_mask=field_mask_pb2.FieldMask(paths=list(paths))
    )


async def test_bad_display_names(alice: Account) -> None:
    tech = await _tech(alice)
    before = await alice.lists()
    for bad in BAD_DISPLAY_NAMES:
        await invalid(alice.create(bad), "watchlist.display_name")
        await invalid(alice.rename(tech.name, bad), "watchlist.display_name")
    assert await alice.lists() == before
    # The edges that are fine: 64 characters, surrounding spaces trimmed, any script.
    assert (await alice.create("z" * 64)).display_name == "z" * 64
    assert (await alice.create("  " + "w" * 64 + "  ")).display_name == "w" * 64
    assert (await alice.rename(tech.name, "Tech 🚀 テック")).display_name == "Tech 🚀 テック"


async def test_malformed_symbols_one_violation_each(alice: Account) -> None:
    tech = await _tech(alice)
    before = await alice.lists()
    given = ["NVDA", *MALFORMED_SYMBOLS, "spy"]
    bad = [i for i, s in enumerate(given) if s in MALFORMED_SYMBOLS]

    add = await invalid(alice.add(tech.name, given))
    assert sorted(violations(add)) == sorted(f"symbols[{i}]" for i in bad)

    remove = await invalid(
        alice.wl.RemoveSymbols(
            watchlist_service_pb2.RemoveSymbolsRequest(name=tech.name, symbols=given)
        )
    )
    assert sorted(violations(remove)) == sorted(f"symbols[{i}]" for i in bad)

    items = [watchlist_pb2.WatchlistItem(symbol=s) for s in given]
    expected_items = sorted(f"watchlist.items[{i}].symbol" for i in bad)
    update = await invalid(
        alice.wl.UpdateWatchlist(_update(Watchlist(name=tech.name, items=items), "items"))
    )
    assert sorted(violations(update)) == expected_items
    create = await invalid(alice.create("New", given))
    assert sorted(violations(create)) == expected_items

    for symbol in MALFORMED_SYMBOLS:
        moved = await invalid(
            alice.wl.MoveSymbol(
                watchlist_service_pb2.MoveSymbolRequest(name=tech.name, symbol=symbol, index=0)
            ),
            "symbol",
        )
        assert violations(moved) == ["symbol"]
    assert await alice.lists() == before


async def test_symbol_lists_must_not_be_empty(alice: Account) -> None:
    tech = await _tech(alice)
    before = await alice.lists()
    await invalid(alice.add(tech.name, []), "symbols")
    await invalid(
        alice.wl.RemoveSymbols(watchlist_service_pb2.RemoveSymbolsRequest(name=tech.name)),
        "symbols",
    )
    assert await alice.lists() == before


async def test_negative_page_size_and_index(alice: Account) -> None:
    tech = await _tech(alice)
    before = await alice.lists()
    for size in (-1, -(2**31)):
        await invalid(
            alice.wl.ListWatchlists(
                watchlist_service_pb2.ListWatchlistsRequest(parent="users/me", page_size=size)
            ),
            "page_size",
        )
    for index in (-1, -(2**31)):
        await invalid(alice.add(tech.name, ["NVDA"], index=index), "index")
        await invalid(
            alice.wl.MoveSymbol(
                watchlist_service_pb2.MoveSymbolRequest(name=tech.name, symbol="AAPL", index=index)
            ),
            "index",
        )
    assert await alice.lists() == before


async def test_update_masks(alice: Account) -> None:
    tech = await _tech(alice)
    before = await alice.lists()
    renamed = Watchlist(name=tech.name, display_name="Renamed", is_default=True)
    await invalid(alice.wl.UpdateWatchlist(_update(renamed)), "update_mask")
    await invalid(
        alice.wl.UpdateWatchlist(watchlist_service_pb2.UpdateWatchlistRequest(watchlist=renamed)),
        "update_mask",
    )
    for path in ("name", "etag", "create_time", "update_time", "displayName", "items.symbol", "*"):
        error = await invalid(alice.wl.UpdateWatchlist(_update(renamed, path)))
        assert any(v.startswith("update_mask") for v in violations(error)), (path, error)
        # Naming an updatable field as well does not let any of it through.
        await invalid(alice.wl.UpdateWatchlist(_update(renamed, "display_name", path)))
    assert await alice.lists() == before


async def test_is_default_false_is_invalid(alice: Account) -> None:
    default, tech = (await alice.lists())[:2]
    before = await alice.lists()
    for target in (default, tech):
        await invalid(
            alice.wl.UpdateWatchlist(
                _update(Watchlist(name=target.name, is_default=False), "is_default")
            ),
            "watchlist.is_default",
        )
    # Together with a valid rename: nothing of it is applied.
    await invalid(
        alice.wl.UpdateWatchlist(
            _update(
                Watchlist(name=tech.name, display_name="Renamed", is_default=False),
                "display_name",
                "is_default",
            )
        ),
        "watchlist.is_default",
    )
    assert await alice.lists() == before


async def test_bad_request_ids(alice: Account) -> None:
    before = await alice.lists()
    await invalid(alice.create("Tech", request_id="r" * 65), "request_id")
    assert await alice.lists() == before
    assert (await alice.create("Fine", request_id="r" * 64)).display_name == "Fine"


async def test_malformed_names(alice: Account) -> None:
    before = await alice.lists()
    bad_names = [
        "",
        "watchlists/abc",
        "users/me",
        "users/me/watchlists",
        "users/me/watchlists/",
        "users//watchlists/abc",
        "users/me/alerts/abc",
        "user/me/watchlists/abc",
        "users/me/watchlists/abc/extra",
    ]
    for name in bad_names:
        await invalid(alice.get(name), "name")
        await invalid(
            alice.wl.DeleteWatchlist(watchlist_service_pb2.DeleteWatchlistRequest(name=name)),
            "name",
        )
        await invalid(alice.add(name, ["AAPL"]), "name")
        await invalid(
            alice.wl.RemoveSymbols(
                watchlist_service_pb2.RemoveSymbolsRequest(name=name, symbols=["AAPL"])
            ),
            "name",
        )
        await invalid(
            alice.wl.MoveSymbol(
                watchlist_service_pb2.MoveSymbolRequest(name=name, symbol="AAPL", index=0)
            ),
            "name",
        )
        await invalid(alice.rename(name, "Renamed"), "watchlist.name")
    for parent in ("", "users", "users/", "user/me", "users/me/watchlists", "me"):
        await invalid(
            alice.wl.ListWatchlists(watchlist_service_pb2.ListWatchlistsRequest(parent=parent)),
            "parent",
        )
        await invalid(
            alice.wl.CreateWatchlist(
                watchlist_service_pb2.CreateWatchlistRequest(
                    parent=parent, watchlist=Watchlist(display_name="Tech")
                )
            ),
            "parent",
        )
    assert await alice.lists() == before
