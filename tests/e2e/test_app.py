"""The demo app in headless Chromium at phone (390x844, touch) and desktop (1280x800) size.

One scenario per size (clients/web/src/node/app-scenario.ts) walks every screen and flow; the
assertions below read what it saw: layout on every screen, the edge learned from config.json,
field violations next to their fields, refused symbol lists that leave the stream live, a chain
NOT_FOUND that clears the chain, MFA set-up and sign-in (TOTP, wrong code, recovery code once),
and sign-out clearing every screen so that a second user sees nothing of the first.

The Alerts screen has a scenario of its own per size (alerts-scenario.ts): an alert set from a
watchlist row that fires, the event feed cut off and resumed from its last event id (the events
fired meanwhile exactly once, then live ones), etag'd enable / disable / delete, a reload that
resumes from sessionStorage, and sign-out that clears it all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from optix_server.devrun import StaticSite
from tests.e2e.accounts import PASSWORD, new_email
from tests.e2e.node import APP, run_json
from tests.e2e.stack import (
    Edge,
    demo_page,
    envoy,
    envoy_env,
    free_port,
    optix_server,
    render_envoy_config,
)

SERVER_ENV = {
    # Cheap password hashing: each size signs in five times.
    "OPTIX_USER_BCRYPT_COST": "4",
    # Every sign-up reaches the server from 127.0.0.1 through the edge.
    "OPTIX_USER_REGISTRATIONS_PER_ADDRESS": "1000",
    # Servers may allow fewer stream symbols than the proto's 500: five symbols then pass the
    # page's own check and are refused by the server, as any limit only the server knows.
    "OPTIX_MARKETDATA_MAX_STREAM_SYMBOLS": "4",
}
DEFAULT_SYMBOLS = "AAPL,MSFT,SPY,TSLA"


@dataclass
class AppStack:
    """A server and an edge of their own, the app with config.json, and the app without it."""

    edge: Edge
    page: StaticSite
    bare_page: StaticSite


@pytest.fixture(scope="module")
def app_stack(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppStack]:
    """Shared by both sizes (their accounts differ); its own server for the settings above."""
    with optix_server(tmp_path_factory.mktemp("optix-var-app"), SERVER_ENV) as backend:
        listen, admin = free_port(), free_port()
        config = render_envoy_config(
            tmp_path_factory.mktemp("envoy-app") / "envoy.yaml",
            envoy_env(backend.address, listen, admin),
        )
        with (
            envoy(config, listen, admin) as edge,
            demo_page(edge.url) as page,
            demo_page(None) as bare_page,
        ):
            yield AppStack(edge, page, bare_page)


def _layout(result: dict[str, Any], phone: bool, screens: set[str]) -> None:
    layouts = result["layouts"]
    assert screens <= {layout["screen"] for layout in layouts}
    for layout in layouts:
        where = json.dumps(layout, indent=1)
        assert layout["viewportWidth"] == (390 if phone else 1280), where
        # No sideways scrolling of the page (wide tables scroll inside their own box).
        assert layout["scrollWidth"] <= layout["clientWidth"], where
        # Every visible control is what a tap at its centre hits.
        assert layout["controls"] > 0 and layout["blocked"] == [], where
        assert layout["whoFits"], where
        if phone:
            assert layout["small"] == [], where  # >= 44 x 44 px touch targets


def _edge_and_fields(result: dict[str, Any], stack: AppStack, email: str) -> None:
    # The page asked its own server where the edge is; no guess, no note.
    assert result["edge"] == stack.edge.url
    assert result["edgeNoteHidden"] is True
    # The server's BadRequest violations, each next to the input it names.
    assert result["emailError"] == "must be a valid email address"
    assert "8 characters" in result["passwordError"]
    assert result["emailInvalid"] == "true"
    assert result["generalErrorOnInvalid"] == ""
    # Signed in: sign-in and register are gone.
    assert result["whoA"] == email
    assert result["authHiddenSignedIn"] is True
    assert result["signInHiddenSignedIn"] is True
    assert result["registerHiddenSignedIn"] is True


def _quotes(result: dict[str, Any]) -> None:
    assert result["defaultSymbols"] == DEFAULT_SYMBOLS
    first = result["generationFirst"]
    # "??" fails the server's symbol rule, checked in the page: no call, the stream goes on.
    assert result["clientRefusal"].startswith("??: ticker must start with a letter")
    assert result["clientRefusalNote"] == "Still streaming AAPL, MSFT, SPY, TSLA"
    assert result["callsForClientRefusal"] == 0
    assert result["stateAfterClientRefusal"] == "live"
    assert result["symbolsAfterClientRefusal"] == DEFAULT_SYMBOLS
    assert result["generationAfterClientRefusal"] == first
    # Five symbols pass the page and are refused by this server: one call, refused; the old
    # stream still delivers (updates kept growing) and was never replaced.
    assert result["serverRefusal"] == "at most 4 symbols per request, got 5"
    assert result["callsForServerRefusal"] == 1
    assert result["stateAfterServerRefusal"] == "live"
    assert result["symbolsAfterServerRefusal"] == DEFAULT_SYMBOLS
    assert result["generationAfterServerRefusal"] == first
    # A good list replaces the stream (normalised, uppercased) and clears the error.
    assert result["generationAfterSwitch"] == first + 1
    assert result["rowsAfterSwitch"] == ["NVDA", "AMD"]
    assert result["symbolsErrorAfterSwitch"] == ""


def _chain(result: dict[str, Any]) -> None:
    assert result["chainRows"] > 0
    # NOT_FOUND: the earlier chain, its summary and expirations leave the screen.
    assert "ZZZZ" in result["notFoundError"]
    assert result["chainRowsAfterNotFound"] == 0
    assert result["chainSummaryAfterNotFound"] == ""
    assert result["expirationsAfterNotFound"] == 1  # just "nearest expiration"
    assert result["invalidUnderlyingError"].startswith("ticker must start with a letter")
    assert result["underlyingErrorAfterReload"] == ""


def _mfa(result: dict[str, Any], email: str) -> None:
    assert result["accountEmail"] == email
    assert result["mfaStateBefore"] == "off"
    # The QR code, read back from the pixels, is the otpauth URI with the secret shown as text.
    uri = urlsplit(result["qrText"])
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert unquote(uri.path) == f"/OPTIX:{email}"
    query = parse_qs(uri.query)
    assert query["secret"] == [result["secret"]] and query["issuer"] == ["OPTIX"]
    assert result["linkHref"] == result["qrText"]
    assert result["wrongSetupCodeError"] == "is not a current code"
    # Confirmed: ten recovery codes, shown once; the secret and QR code left the page.
    codes = result["recoveryCodes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    assert result["mfaStateAfter"] == "on"
    assert result["secretAfterConfirm"] == ""
    assert result["qrAfterConfirm"] == 0
    assert result["codesAfterDone"] == 0
    # Sign-in asks for the second factor; a short and a wrong code are refused at the field.
    assert email in result["mfaPrompt"]
    assert result["shortCodeError"] == "must be a 6-digit code"
    assert result["wrongCodeError"].startswith("This code is not right")
    assert result["wrongCodeInvalid"] == "true"
    assert result["stillOnCodeStep"] is True
    assert result["whoAfterTotp"] == email
    assert result["mfaStateSignedIn"] == "on"
    # A recovery code signs in once, and only once.
    assert result["whoAfterRecovery"] == email
    assert result["reusedRecoveryError"].startswith("This recovery code is not valid")
    assert result["whoAfterReuse"] == ""


def _signed_out(result: dict[str, Any]) -> None:
    assert result["openStreamsAfterSignOut"] == 0
    after = result["afterSignOut"]
    assert after == {
        "who": "",
        "quotesRows": 0,
        "updateCount": "0",
        "quotesSymbols": "",
        "streamState": "idle",
        "symbolsError": "",
        "chainRows": 0,
        "chainSummary": "",
        "underlyingError": "",
        "expirations": 1,
        "watchlistItems": 0,
        "watchlistName": "",
        "watchlistLists": 0,
        "accountEmail": "",
        "mfaSecret": "",
        "mfaQr": 0,
        "recoveryCodes": 0,
        "password": "",
        "alertSymbols": 0,
        "alertItems": 0,
        "alertEvents": 0,
        "alertFeedState": "idle",
        "alertStorage": [],
        "visibleScreens": ["auth-panel"],
        "navHidden": True,
        "leaks": [],
    }, json.dumps(after, indent=1)


def _second_user(result: dict[str, Any], email: str) -> None:
    assert result["whoB"] == email
    assert result["bWatchlist"] == 0
    assert result["bQuoteSymbols"] == DEFAULT_SYMBOLS
    assert result["bChainRows"] == 0
    assert result["bUnderlying"] == "AAPL"
    assert result["bAccountEmail"] == email
    assert result["bMfaState"] == "off"
    seen = result["bSeesOfA"]
    # Nothing of the first user anywhere in the page, hidden screens and inputs included.
    assert seen["leaks"] == [], json.dumps(seen, indent=1)
    assert (seen["mfaSecret"], seen["mfaQr"], seen["recoveryCodes"]) == ("", 0, 0)
    assert result["openStreamsAtEnd"] == 0


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_demo_app(size: str, chromium: str, app_stack: AppStack, tmp_path: Path) -> None:
    """Every screen's layout and every flow of the app at one size."""
    email_a = new_email(f"{size}-first-user-with-a-rather-long-address")
    email_b = new_email(f"{size}-second")
    args = [
        "--page", app_stack.page.url,
        "--size", size,
        "--email-a", email_a,
        "--email-b", email_b,
        "--password", PASSWORD,
        "--chromium", chromium,
        "--screenshots", str(tmp_path),
    ]  # fmt: skip
    if size == "phone":
        args += ["--bare-page", app_stack.bare_page.url]
    (result,) = run_json(APP, *args, timeout=180)
    assert result["ok"], result.get("error")
    screens = {"signed out", "watchlists", "quotes", "chain", "alerts", "account set-up"}
    screens |= {"account recovery codes", "sign-in code step", "field errors"}
    _layout(result, size == "phone", screens)
    _edge_and_fields(result, app_stack, email_a)
    # The Alerts screen offers the symbol just added to the watchlist.
    assert result["alertSymbol"] == "NVDA"
    _quotes(result)
    _chain(result)
    _mfa(result, email_a)
    _signed_out(result)
    _second_user(result, email_b)
    assert result["consoleErrors"] == []
    if size == "phone":
        # Served without config.json: the page guesses the page's host on :8080 and says so.
        bare_host = urlsplit(app_stack.bare_page.url).hostname
        assert result["bareEdge"] == f"http://{bare_host}:8080"
        assert "config.json" in result["bareNote"] and "?edge=" in result["bareNote"]


# --- the Alerts screen -------------------------------------------------------------------------

STORAGE_PREFIX = "optix.alerts.lastEventId:users/"
STALE_ALERT = "This alert changed elsewhere — reloaded"


def _ids(items: list[dict[str, str]]) -> list[str]:
    return [item["id"] for item in items]


def _alert_form(result: dict[str, Any]) -> None:
    # "Set alert" on the watchlist row opened the Alerts screen with that symbol, the level 1%
    # above the current price (the default condition is "above"), and that price shown.
    assert result["rowAlertLabel"] == "Set an alert on NVDA"
    assert result["hash"] == "#alerts"
    assert result["pickedSymbol"] == "NVDA"
    assert result["symbolOptions"] == ["NVDA"]  # fed by the user's watchlists
    last = result["prefilledLast"]
    assert last > 0 and result["watchedPrice"] > 0
    level = result["prefilledLevel"]
    assert re.fullmatch(r"\d+\.\d\d", level) and abs(float(level) - last * 1.01) <= 0.005001
    hint = re.fullmatch(r"NVDA is at (\d+\.\d\d) now \(simulated\)", result["levelHint"])
    assert hint is not None and abs(float(hint[1]) - last) <= 0.005001, result["levelHint"]
    assert result["kindDefault"] == "above"
    assert result["directionHiddenForAbove"] is True
    assert result["directionVisibleForCrossing"] is True
    assert result["crossingDirection"] == "1"  # UP: the suggested level is above the price
    # Not a number: said at the field, no call. Zero and a long note: the server's violations,
    # each next to its field, nothing created.
    assert result["clientLevelError"] == "Enter a price, e.g. 123.45"
    assert result["createCallsForClientError"] == 0
    assert result["levelError"] == "must be a finite number > 0"
    assert result["noteError"] == "at most 500 characters, got 501"
    assert result["formErrorOnInvalid"] == ""
    assert result["levelInvalid"] == "true"
    assert result["createCallsForServerError"] == 1
    assert result["alertsAfterInvalid"] == 0
    assert result["levelErrorAfterCreate"] == ""


def _alert_fires(result: dict[str, Any]) -> str:
    """The first alert (level below the price) fired once; returns its event id."""
    assert result["feedEmptyShown"] is True
    row = result["firstRow"]
    assert (row["symbol"], row["state"], row["fires"]) == ("NVDA", "COMPLETED", "1")
    assert result["firstFires"].startswith("fired 1\u00d7")
    event = result["firstEvent"]
    assert (event["arrival"], event["symbol"]) == ("live", "NVDA")
    assert event["message"].startswith("NVDA is above ")
    assert event["message"].endswith("\nfirst alert from the watchlist")
    first = str(event["id"])
    # The last event shown, in memory and in sessionStorage under the user.
    assert result["lastIdAfterFirst"] == first
    (key, value), *more = result["storedAfterFirst"].items()
    assert key.startswith(STORAGE_PREFIX) and value == first and not more
    # A new user has no events: the feed's first call resumed after 0.
    assert result["opensBeforeDisconnect"] == ["0"]
    return first


def _alert_resume(result: dict[str, Any], first: str) -> None:
    # Offline: the page ended its call; two alerts fired meanwhile (made by another client).
    assert result["openStreamsOffline"] == 0
    missed = result["missedIds"]
    assert len(missed) == 2 and all(int(i) > int(first) for i in missed)
    assert result["feedWhileOffline"] == 1
    # Back online, the first reconnect was refused UNAVAILABLE; every reconnect asked for the
    # events after the last one shown, and the feed shows exactly the two missed ones, once,
    # marked missed (newest first), above the first event.
    assert result["refusedDetail"].startswith("Unavailable: ")
    assert result["refusedCalls"] >= 1
    assert result["opensAfterReconnect"] == [first] * (result["refusedCalls"] + 1)
    after = result["afterReconnect"]
    assert _ids(after) == [missed[1], missed[0], first]
    assert [item["arrival"] for item in after] == ["missed", "missed", "live"]
    # Both alerts fire on the next ticks of their symbols: which one the database numbers first
    # is not defined (the monitor evaluates each symbol's ticks as they come).
    notes = sorted((item["symbol"], item["message"].rsplit("\n", 1)[-1]) for item in after[:2])
    assert notes == [("NVDA", "missed one"), ("SPY", "missed two")], after[:2]
    assert result["feedNote"] == "2 alerts fired while the feed was disconnected (marked “missed”)"
    assert result["lastIdAfterReconnect"] == missed[1]
    # Then a live one, on the same call (no further reconnect), and nothing twice.
    live = result["afterLive"]
    assert live[1:] == after
    assert (live[0]["arrival"], live[0]["symbol"]) == ("live", "NVDA")
    assert int(live[0]["id"]) > int(missed[1])
    assert live[0]["message"].endswith("\nlive again")
    assert result["duplicates"] == "0"
    assert result["opensTotal"] == 1 + len(result["opensAfterReconnect"])
    rows = result["rowsAfterLive"]
    assert [(r["symbol"], r["state"], r["fires"]) for r in rows] == [
        ("NVDA", "COMPLETED", "1"),
        ("SPY", "COMPLETED", "1"),
        ("NVDA", "COMPLETED", "1"),
        ("NVDA", "COMPLETED", "1"),
    ]  # newest first


def _alert_actions(result: dict[str, Any]) -> None:
    # Enabled by another client after the page disabled it: the page's enable carried the old
    # etag, was refused ABORTED, and the list was reloaded. Delete (confirmed) removed the row.
    assert result["etagBeforeStale"] != result["etagAfterStale"]
    assert result["staleMessage"] == STALE_ALERT
    assert result["deleteMessage"].startswith("Deleted “NVDA above ")
    assert result["rowsAfterDelete"] == 4


def _alert_reload_and_sign_out(result: dict[str, Any]) -> None:
    newest = result["afterLive"][0]["id"]
    assert list(result["storedBeforeReload"].values()) == [newest]
    # A reload keeps the tab's sessionStorage: signed in again, the feed shows its history as
    # "earlier" and resumes after the last event shown, so the one fired meanwhile is missed.
    assert result["storedAfterReload"] == result["storedBeforeReload"]
    (away,) = result["awayIds"]
    feed = result["afterReloadFeed"]
    assert _ids(feed) == [away, *_ids(result["afterLive"])]
    assert [item["arrival"] for item in feed] == ["missed"] + ["earlier"] * 4
    assert result["opensAfterReload"] == [newest]
    # Sign-out: no stream, nothing shown, nothing stored.
    assert result["openStreamsAfterSignOut"] == 0
    assert result["afterSignOut"] == {
        "feedItems": 0,
        "alertItems": 0,
        "symbolOptions": 0,
        "feedState": "idle",
        "feedNote": "",
        "lastEventId": "",
        "level": "",
        "note": "",
        "message": "",
        "storage": [],
        "leaks": [],
    }, json.dumps(result["afterSignOut"], indent=1)
    # Signed in again with nothing stored: history only, resuming after its newest event.
    again = result["afterSignInAgain"]
    assert _ids(again) == _ids(feed)
    assert {item["arrival"] for item in again} == {"earlier"}
    assert result["opensAfterSignInAgain"] == [away]
    assert result["openStreamsAtEnd"] == 0


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_alerts_screen(size: str, chromium: str, app_stack: AppStack, tmp_path: Path) -> None:
    """Set an alert from a watched symbol, see it fire, and a feed that resumes after a drop."""
    args = [
        "--scenario", "alerts",
        "--page", app_stack.page.url,
        "--edge", app_stack.edge.url,
        "--size", size,
        "--email-a", new_email(f"{size}-alerts"),
        "--password", PASSWORD,
        "--chromium", chromium,
        "--screenshots", str(tmp_path),
    ]  # fmt: skip
    (result,) = run_json(APP, *args, timeout=120)
    assert result["ok"], result.get("error")
    screens = {"watchlists", "alerts field errors", "alerts", "alerts delete confirmation"}
    _layout(result, size == "phone", screens | {"signed out"})
    _alert_form(result)
    first = _alert_fires(result)
    _alert_resume(result, first)
    _alert_actions(result)
    _alert_reload_and_sign_out(result)
    assert result["consoleErrors"] == []
