"""The demo app's Portfolio screen in headless Chromium at phone (390x844, touch) and desktop
(1280x800) size, against a server whose Schwab connector is the local stand-in
(tests/support/schwab_standin.py) and whose Schwab redirect URI is the demo page itself, the
app's OAuth callback route.

The scenario (clients/web/src/node/portfolio-scenario.ts) connects the paper broker in one tap
and reads the merged portfolio back from the page: every position carries Greeks, and the totals
are the exact sums of the positions' values. Then "Connect Schwab": the tab leaves for the
stand-in's authorize URL, follows its 302 to the page with `code` and `state`, and the page
resumes the session, calls CompleteConnection over grpc-web and cleans the address bar. This test
kills the stand-in's tokens when the driver asks; "Sync now" then marks the connection REVOKED
(its refresh token refused before its end) and the page offers Re-authorise, which runs the OAuth
dance again back to ACTIVE, on the same connection. A refused sync shows its retry delay, delete
removes the paper broker, and sign-out clears the screen. Layout is checked on each state at
both sizes.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from optix_server.devrun import StaticSite
from tests.e2e.accounts import PASSWORD, new_email
from tests.e2e.dialogue import dialogue
from tests.e2e.node import APP, WEB, node_binary
from tests.e2e.stack import (
    Edge,
    demo_page,
    envoy,
    envoy_env,
    free_port,
    optix_server,
    render_envoy_config,
)
from tests.support.schwab_standin import StandIn, schwab_standin

PAPER = "providers/paper"
SCHWAB = "providers/schwab"
SCENARIO_TIMEOUT_S = 180.0
MONEY_TESTS = WEB / "dist" / "node" / "money.test.mjs"


def server_env(standin: StandIn, redirect_uri: str) -> dict[str, str]:
    """OPTIX_* settings: Schwab is the stand-in, redirecting to the demo page."""
    return {
        "OPTIX_USER_BCRYPT_COST": "4",
        "OPTIX_USER_REGISTRATIONS_PER_ADDRESS": "1000",
        # "Sync now" right after a sync must run (the REAUTH step needs one).
        "OPTIX_BROKERAGE_MIN_SYNC_INTERVAL_SECONDS": "0",
        "OPTIX_BROKERAGE_TOKEN_KEYS": "k1:" + "a" * 44,
        "OPTIX_BROKERAGE_SCHWAB_CLIENT_ID": standin.client_id,
        "OPTIX_BROKERAGE_SCHWAB_CLIENT_SECRET": standin.client_secret,
        "OPTIX_BROKERAGE_SCHWAB_REDIRECT_URIS": redirect_uri,
        "OPTIX_BROKERAGE_SCHWAB_OAUTH_URL": standin.oauth_url,
        "OPTIX_BROKERAGE_SCHWAB_TRADER_URL": standin.trader_url,
        "OPTIX_BROKERAGE_SCHWAB_MAX_ATTEMPTS": "2",
        "OPTIX_BROKERAGE_SCHWAB_REQUESTS_PER_MINUTE": "100000",
    }


@dataclass
class PortfolioStack:
    """The stand-in, a server configured with it, an edge, and the demo page."""

    standin: StandIn
    edge: Edge
    page: StaticSite


@pytest.fixture(scope="module")
def portfolio_stack(
    chromium: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PortfolioStack]:
    """Shared by both sizes (their users differ). The page comes first: its URL is the redirect
    URI the server is configured with; the edge's port is chosen before either starts."""
    listen, admin = free_port(), free_port()
    with schwab_standin() as standin, demo_page(f"http://127.0.0.1:{listen}") as page:
        standin.redirect_uris = {page.url}
        env = server_env(standin, page.url)
        with optix_server(tmp_path_factory.mktemp("optix-var-portfolio"), env) as backend:
            config = render_envoy_config(
                tmp_path_factory.mktemp("envoy-portfolio") / "envoy.yaml",
                envoy_env(backend.address, listen, admin),
            )
            with envoy(config, listen, admin) as edge:
                yield PortfolioStack(standin, edge, page)


def _row(rows: list[dict[str, Any]], provider: str) -> dict[str, Any]:
    (row,) = [r for r in rows if r["provider"] == provider]
    return row


def _exact_totals(shown: dict[str, Any]) -> None:
    """The totals the page shows are the exact sums of its positions' values (BigInt nanos)."""
    positions = shown["positions"]
    totals = shown["totals"]
    for key in ("marketValue", "unrealized", "day"):
        assert int(totals[key]["nanos"]) == sum(int(p[key]) for p in positions), key
    # Cash and positions make the total value.
    assert int(totals["totalValue"]["nanos"]) == int(totals["cash"]["nanos"]) + int(
        totals["marketValue"]["nanos"]
    )
    # Greeks are doubles: their sums agree up to rounding.
    for key in ("delta", "deltaDollars", "gamma", "theta", "vega"):
        want = sum(float(p[key]) for p in positions if p[key] != "")
        got = float(shown["greeks"][key]["value"])
        assert abs(got - want) <= 1e-6 * max(1.0, abs(want)), (key, got, want)
    # Signs and colours follow the amounts.
    for total in ("unrealized", "day"):
        nanos = int(totals[total]["nanos"])
        text, kind = totals[total]["text"], totals[total]["kind"]
        if nanos >= 5_000_000:
            assert text.startswith("+$") and kind == "up", totals[total]
        elif nanos <= -5_000_000:
            assert text.startswith("-$") and kind == "down", totals[total]


def _paper(result: dict[str, Any]) -> None:
    assert result["connectLabels"] == ["Connect paper broker", "Connect Charles Schwab"]
    # No connection yet: a portfolio of zeros.
    assert {t["text"].split(" ")[0] for t in result["emptyTotals"].values()} == {"$0.00"}
    # One tap: one StartConnection, one CompleteConnection.
    assert result["paperCalls"] == {"start": 1, "complete": 1}
    (row,) = result["paperRows"]
    assert (row["provider"], row["status"]) == (PAPER, "ACTIVE")
    assert row["buttons"] == ["pf-sync", "pf-delete"]
    paper = result["paper"]
    positions = paper["positions"]
    assert len(positions) >= 3
    # Equities and options, each with its Greeks (an equity's delta is its quantity).
    options = [p for p in positions if " " in p["symbol"] or len(p["symbol"]) > 15]
    equities = [p for p in positions if p not in options]
    assert options and equities
    assert all(p["delta"] != "" and p["theta"] != "" for p in positions), positions
    for p in equities:
        assert float(p["delta"]) == float(p["quantity"]), p
    assert all(p["priceSource"] == "quote" for p in positions)
    assert paper["quotesNoteHidden"] is True
    assert paper["missing"] == ""
    assert int(paper["totals"]["cash"]["nanos"]) > 0
    _exact_totals(paper)


def _callback(trip: dict[str, Any], page: StaticSite, standin: StandIn) -> str:
    """The tab went to the stand-in's authorize URL and came back to the page's callback route
    with a code and the state; returns the state."""
    documents = trip["documents"]
    assert documents[0].startswith(f"{standin.oauth_url}/authorize?"), documents
    authorize = parse_qs(urlsplit(documents[0]).query)
    assert authorize["redirect_uri"] == [page.url]
    callback = urlsplit(trip["callback"])
    assert f"{callback.scheme}://{callback.netloc}{callback.path}" == page.url
    query = parse_qs(callback.query)
    assert query["state"] == authorize["state"] and query["code"][0].startswith("C0.")
    assert documents[-1] == trip["callback"], documents
    return str(query["state"][0])


def _schwab(result: dict[str, Any], stack: PortfolioStack, email: str) -> str:
    _callback(result["schwabTrip"], stack.page, stack.standin)
    after = result["afterSchwab"]
    # The session survived the trip; the address bar lost the code; the hand-off is gone.
    assert after == {"url": stack.page.url + "#portfolio", "hash": "#portfolio", "handoff": None,
                     "who": email}  # fmt: skip
    assert result["schwabCalls"] == {"complete": 2}
    rows = result["schwabRows"]
    assert [r["provider"] for r in rows] == [PAPER, SCHWAB]
    schwab = _row(rows, SCHWAB)
    assert schwab["status"] == "ACTIVE" and schwab["accounts"] == "2"
    assert schwab["reauthTime"] != "" and schwab["detail"].startswith("Sign-in valid until ")
    merged = result["merged"]
    # Merged by symbol across the paper account and Schwab's two.
    assert (result["paper"]["accounts"], merged["accounts"]) == ("1", "3")
    assert len(merged["positions"]) >= len(result["paper"]["positions"])
    assert len({p["symbol"] for p in merged["positions"]}) == len(merged["positions"])
    _exact_totals(merged)
    return str(schwab["name"])


def _reauth(result: dict[str, Any], stack: PortfolioStack, schwab_name: str) -> None:
    row = _row(result["reauthRows"], SCHWAB)
    # Refused before its 7-day end: access was withdrawn at the broker.
    assert row["name"] == schwab_name and row["status"] == "REVOKED"
    assert row["buttons"] == ["pf-reauth", "pf-delete"]
    assert "withdrawn" in row["detail"] and "sign in" in row["detail"].lower(), row["detail"]
    assert "Re-authorise by " not in row["detail"]
    assert row["detail"].endswith("The last synced data is still shown.")
    # The last synced data is still in the portfolio.
    assert len(result["reauthPortfolio"]["positions"]) == len(result["merged"]["positions"])
    _callback(result["reauthTrip"], stack.page, stack.standin)
    assert result["afterReauth"]["hash"] == "#portfolio"
    assert result["afterReauth"]["handoff"] is None
    assert result["reauthCompletes"] == 1
    again = _row(result["reauthorisedRows"], SCHWAB)
    assert again["name"] == schwab_name and again["status"] == "ACTIVE"
    assert len(result["reauthorisedRows"]) == 2
    assert result["reauthMessage"] == "Re-authorised Charles Schwab: synced"


def _rest(result: dict[str, Any]) -> None:
    assert result["refusedMessage"].endswith("try again in 42 s"), result["refusedMessage"]
    assert result["refusedKind"] == "warn"
    assert result["deleteMessage"].startswith("Deleted “")
    assert [r["provider"] for r in result["afterDeleteRows"]] == [SCHWAB]
    assert result["afterDelete"]["accounts"] == "2"
    _exact_totals(result["afterDelete"])
    assert result["afterSignOut"] == {
        "connections": 0,
        "positions": 0,
        "connectButtons": 0,
        "marketValue": "",
        "delta": "",
        "message": "",
        "loaded": "",
        "handoff": None,
        "visibleScreens": ["auth-panel"],
        "leaks": [],
    }, json.dumps(result["afterSignOut"], indent=1)


def _layout(result: dict[str, Any], phone: bool) -> None:
    layouts = result["layouts"]
    names = {layout["screen"] for layout in layouts}
    assert {"portfolio empty", "portfolio", "portfolio two brokers"} <= names
    assert {"portfolio access revoked", "portfolio delete confirmation", "signed out"} <= names
    for layout in layouts:
        where = json.dumps(layout, indent=1)
        assert layout["viewportWidth"] == (390 if phone else 1280), where
        assert layout["scrollWidth"] <= layout["clientWidth"], where
        assert layout["controls"] > 0 and layout["blocked"] == [], where
        assert layout["whoFits"], where
        if phone:
            assert layout["small"] == [], where
    # The positions fit: no sideways scrolling, not even inside their box (a phone shows each
    # position as a card).
    assert result["merged"]["boxWithinPage"] is True
    assert result["merged"]["boxScrolls"] is False


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_portfolio_screen(
    size: str, chromium: str, portfolio_stack: PortfolioStack, tmp_path: Path
) -> None:
    """Paper broker, the Schwab OAuth dance through the page's callback, re-authorisation."""
    email = new_email(f"{size}-portfolio")
    args = [
        "--scenario", "portfolio",
        "--page", portfolio_stack.page.url,
        "--size", size,
        "--email-a", email,
        "--password", PASSWORD,
        "--chromium", chromium,
        "--screenshots", str(tmp_path),
    ]  # fmt: skip
    with dialogue(APP, *args) as driver:
        ask = driver.record(timeout=SCENARIO_TIMEOUT_S)
        if ask.get("event") == "kill-schwab-tokens":
            # The next sync finds its access token expired and the refresh token dead.
            portfolio_stack.standin.expire_access_tokens()
            portfolio_stack.standin.kill_refresh_tokens()
            driver.send({"answer": "done"})
            result = driver.record(timeout=SCENARIO_TIMEOUT_S)
        else:
            result = ask
    assert result.get("ok"), result.get("error")
    _layout(result, size == "phone")
    _paper(result)
    schwab_name = _schwab(result, portfolio_stack, email)
    _reauth(result, portfolio_stack, schwab_name)
    _rest(result)
    _codes_redeemed(result, portfolio_stack)
    assert result["consoleErrors"] == []


def _codes_redeemed(result: dict[str, Any], stack: PortfolioStack) -> None:
    """Each code the page's callback received was redeemed once by the server, with the page's
    URL as the redirect URI (what the stand-in checks against the authorize request)."""
    redeemed = [
        call.form
        for call in stack.standin.calls_to("/v1/oauth/token")
        if call.form.get("grant_type") == ["authorization_code"]
    ]
    for trip in (result["schwabTrip"], result["reauthTrip"]):
        (code,) = parse_qs(urlsplit(trip["callback"]).query)["code"]
        uses = [form for form in redeemed if form.get("code") == [code]]
        assert len(uses) == 1 and uses[0]["redirect_uri"] == [stack.page.url], uses


def test_money_is_formatted_exactly() -> None:
    """The page's money formatting (clients/web/src/node/money.test.ts, node:test): BigInt
    nanos, rounding on integers, signs and grouping."""
    done = subprocess.run(
        [node_binary(), "--test", str(MONEY_TESTS)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=WEB,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "# fail 0" in done.stdout
