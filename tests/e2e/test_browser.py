"""The demo page in headless Chromium: sign up, watch a streamed quote update, load a chain."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from optix_server.devrun import StaticSite, static_site
from tests.e2e.accounts import PASSWORD, new_email
from tests.e2e.node import BROWSER, DEMO_DIR, run_json
from tests.e2e.stack import Edge


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium; skipped (or failed, under OPTIX_REQUIRE_BROWSER=1) when absent.

    Session-scoped and requested first, so a missing browser costs no server start-up."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        reason = "Chromium is not installed (apt-get install chromium): browser test not run"
        if os.environ.get("OPTIX_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + ", but OPTIX_REQUIRE_BROWSER=1 requires it")
        pytest.skip(reason)
    return found


@pytest.fixture
def demo_site() -> Iterator[StaticSite]:
    """The built demo page (clients/web/dist) on a free port, as `make run` serves it."""
    with static_site(DEMO_DIR) as site:
        yield site


def test_demo_page_signs_in_and_streams_quotes(
    chromium: str, edge: Edge, demo_site: StaticSite, tmp_path: Path
) -> None:
    email = new_email("browser")
    screenshot = tmp_path / "demo.png"
    (result,) = run_json(
        BROWSER,
        "--page", f"{demo_site.url}?edge={edge.url}",
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
