"""The demo page in headless Chromium: sign up, watch a streamed quote update, load a chain;
and the watchlist home screen at phone width, edited from the page and (once) from the SDK."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from optix.watchlist.v1 import watchlist_service_pb2 as wl
from optix_client import PasswordCredentials, SyncOptixClient
from optix_server.devrun import StaticSite
from tests.e2e.accounts import PASSWORD, new_email
from tests.e2e.dialogue import dialogue
from tests.e2e.node import BROWSER, run_json
from tests.e2e.stack import Edge, Process, demo_page, free_port

PRICE = r"^\d+\.\d\d$"


@pytest.fixture
def demo_site(edge: Edge) -> Iterator[StaticSite]:
    """The built demo page on a free port, its config.json naming the test edge (as `make run`
    serves it with the real Envoy port)."""
    with demo_page(edge.url) as site:
        yield site


def test_demo_page_signs_in_and_streams_quotes(chromium: str, edge: Edge, tmp_path: Path) -> None:
    """?edge= overrides config.json: the page's server names an edge nobody listens on."""
    email = new_email("browser")
    screenshot = tmp_path / "demo.png"
    with demo_page(f"http://127.0.0.1:{free_port()}") as misconfigured:
        page = f"{misconfigured.url}?edge={edge.url}"
        (result,) = run_json(
            BROWSER,
            "--page", page,
            "--email", email,
            "--password", PASSWORD,
            "--register", "1",
            "--chain", "1",
            "--chromium", chromium,
            "--screenshot", str(screenshot),
            timeout=120,
        )  # fmt: skip
    assert result["ok"], result
    assert result["who"] == email
    # More quotes rendered than rows: at least one row was updated by a later stream message.
    assert result["updates"] > result["rows"] > 0
    assert result["state"] == "live"
    assert result["chainRows"] > 0
    assert result["consoleErrors"] == []
    assert screenshot.stat().st_size > 0


def test_watchlist_home_screen(
    chromium: str, backend: Process, edge: Edge, demo_site: StaticSite, tmp_path: Path
) -> None:
    """Default list, add with streamed quotes, reorder, a stale etag, create/rename/delete."""
    email = new_email("watchlist")
    screenshot = tmp_path / "watchlist.png"
    args = (
        "--page", demo_site.url,
        "--email", email,
        "--password", PASSWORD,
        "--register", "1",
        "--watchlist", "1",
        "--chromium", chromium,
        "--screenshot", str(screenshot),
    )  # fmt: skip
    with dialogue(BROWSER, *args) as driver:
        ready = driver.record(timeout=120)
        assert ready.get("event") == "stale-ready", json.dumps(ready, indent=1)
        # Another client (the Python SDK, straight to the server) changes the list the page shows.
        creds = PasswordCredentials(email, PASSWORD)
        with SyncOptixClient(backend.address, credentials=creds) as sdk:
            changed = sdk.watchlist.AddSymbols(
                wl.AddSymbolsRequest(name=ready["name"], symbols=["NVDA"])
            ).watchlist
        assert changed.etag != ready["etag"]
        driver.send({"changed": ready["name"]})
        result = driver.record(timeout=120)

    assert result["ok"], json.dumps(result, indent=1)
    assert result["who"] == email
    # The home screen: the server-made default list, which cannot be deleted.
    assert result["initialLists"] == ["My Watchlist"]
    assert result["defaultBadge"] is True
    assert result["defaultDeleteDisabled"] is True
    assert "default" in result["defaultDeleteNote"]
    # Symbols added and priced from the stream; one stream, restarted when the symbols change.
    assert re.match(PRICE, result["aaplPrice"]), result
    assert re.match(PRICE, result["msftPrice"]), result
    assert result["generationBoth"] == result["generationAapl"] + 1
    # A bad symbol: the field violation, next to the input; nothing added; cleared on success.
    assert result["invalidError"].startswith("??: "), result["invalidError"]
    assert result["afterInvalid"] == ["AAPL"]
    assert result["addErrorAfterValid"] == ""
    # Reordering (buttons, and one HTML5 drag) changes the order, not the stream.
    assert result["afterUp"] == ["MSFT", "AAPL"]
    assert result["dragWorked"] is True
    assert result["afterReorder"] == ["MSFT", "AAPL"]
    assert result["generationAfterMove"] == result["generationBoth"]
    # The edit with a stale etag was refused, and the page says so and shows the list as it is.
    assert result["staleMessage"] == "This list changed elsewhere — reloaded"
    assert result["afterStale"] == ["MSFT", "AAPL", "NVDA"]
    assert result["afterRemove"] == ["MSFT", "NVDA"]
    assert result["generationAfterRemove"] > result["generationBoth"]
    assert result["messageAfterRemove"] == ""
    # A second list: created (not the default, deletable), renamed, switched to and from, deleted.
    assert result["afterCreateLists"] == ["My Watchlist", "Earnings"]
    assert result["createdIsDefault"] is False
    assert result["createdDeleteEnabled"] is True
    assert result["afterRenameLists"] == ["My Watchlist", "Earnings Q3"]
    assert result["afterSwitch"] == ["MSFT", "NVDA"]
    assert result["afterDeleteLists"] == ["My Watchlist"]
    assert result["afterDelete"] == ["MSFT", "NVDA"]
    assert result["deleteMessage"] == "Deleted “Earnings Q3”"
    # Phone width: no sideways scrolling, touch targets of at least 44 px.
    layout = result["layout"]
    assert layout["viewportWidth"] == 390
    assert layout["scrollWidth"] <= layout["clientWidth"], layout
    assert layout["minControlHeight"] >= 44, layout
    assert layout["minIconWidth"] >= 44, layout
    # Signing out clears the screen.
    assert result["afterSignOutRows"] == 0
    assert result["afterSignOutName"] == ""
    assert result["consoleErrors"] == []
    assert screenshot.stat().st_size > 0
