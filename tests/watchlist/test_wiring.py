"""How the slice is wired: its limits come from OPTIX_WATCHLIST_* in Settings.env, and market
data is reached at "this server" by default, also when the server was bound on port 0."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from tests.support.backends import fresh_database_url
from tests.support.server import make_settings, running_server
from tests.watchlist.harness import (
    SERVICES,
    TEST_ENV,
    Stack,
    expect,
    symbols_of,
    watchlist_stack,
)

pytestmark = pytest.mark.asyncio(loop_scope="package")


async def test_limits_come_from_the_environment(db_kind: str, tmp_path: Path) -> None:
    env = {"OPTIX_WATCHLIST_MAX_LISTS": "3", "OPTIX_WATCHLIST_MAX_SYMBOLS": "2"}
    async with watchlist_stack(db_kind, tmp_path, env=env) as stack:
        alice = await stack.account()
        await alice.default()
        made = await alice.create("Two", ["AAPL"])
        await alice.create("Three")
        await expect(grpc.StatusCode.RESOURCE_EXHAUSTED, alice.create("Four"))
        assert len(await alice.lists()) == 3
        await alice.add(made.name, ["MSFT"])
        await expect(grpc.StatusCode.RESOURCE_EXHAUSTED, alice.add(made.name, ["NVDA"]))
        assert symbols_of(await alice.get(made.name)) == ["AAPL", "MSFT"]


async def test_marketdata_defaults_to_this_server_when_bound_on_port_0(tmp_path: Path) -> None:
    # The default modules and addresses on port 0 (the OS picks): "this server" must be the
    # port actually bound, not 127.0.0.1:0 (which every in-process market data call once hit).
    async with (
        fresh_database_url("sqlite", tmp_path) as url,
        running_server(make_settings(url, tmp_path, services=SERVICES, env=TEST_ENV)) as running,
    ):
        assert running.settings.port == 0
        stack = Stack(running, "sqlite")
        try:
            alice = await stack.account()
            default = await alice.default()
            added = await alice.add(default.name, ["aapl"])
            assert symbols_of(added) == ["AAPL"]
        finally:
            await stack.close()
