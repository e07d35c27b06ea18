"""A local stand-in for Schwab's APIs (stdlib http.server in a thread), answering like the
documented endpoints:

- market data: /marketdata/v1/quotes, /chains, /expirationchain, /pricehistory;
- OAuth: GET /v1/oauth/authorize (auto-approves: 302 to the redirect URI with code and state),
  POST /v1/oauth/token (HTTP Basic client auth; authorization_code with optional PKCE S256,
  refresh_token) and POST /v1/oauth/revoke;
- Trader API: /trader/v1/accounts/accountNumbers, /accounts?fields=positions,
  /accounts/{hash}?fields=positions, /accounts/{hash}/transactions (startDate, endDate at most a
  year apart, types).

Switches for the failures real apps meet: `failures` (status codes for the next requests, any
path), `faults` (Fault: a status with Retry-After, an HTML error page, malformed JSON or a
dropped connection, optionally only on one path), `expire_access_tokens()`,
`kill_refresh_tokens()`. Every request is recorded in `requests` (path, query, Authorization)
and `calls` (with method, form and arrival time on `clock`, for rate assertions).
Data of any size (benchmarks): `load()` a data set made with `sized_account` and
`sized_history`; `issue_tokens()` gives ready-made token pairs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode, urlparse

QUOTE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z

EQUITIES: dict[str, dict[str, Any]] = {
    "AAPL": {"bidPrice": 189.9, "askPrice": 190.1, "lastPrice": 190.0, "closePrice": 188.0},
    "MSFT": {"bidPrice": 409.5, "askPrice": 410.5, "lastPrice": 410.0, "closePrice": 405.0},
}

CLIENT_ID = "optix-test-app"
CLIENT_SECRET = "optix-test-secret"
REDIRECT_URI = "https://127.0.0.1:8182/callback"
ACCESS_TTL_SECONDS = 1800
REFRESH_TTL = timedelta(days=7)
CODE_TTL_SECONDS = 600
MAX_RANGE = timedelta(days=365)
SCHWAB_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
TRANSACTION_TYPES = frozenset(
    {
        "TRADE",
        "RECEIVE_AND_DELIVER",
        "DIVIDEND_OR_INTEREST",
        "ACH_RECEIPT",
        "ACH_DISBURSEMENT",
        "CASH_RECEIPT",
        "CASH_DISBURSEMENT",
        "ELECTRONIC_FUND",
        "WIRE_OUT",
        "WIRE_IN",
        "JOURNAL",
        "MEMORANDUM",
        "MARGIN_CALL",
        "MONEY_MARKET",
        "SMA_ADJUSTMENT",
    }
)


def _quote_entry(symbol: str, fields: dict[str, Any], quote_ms: int) -> dict[str, Any]:
    return {
        "assetMainType": "EQUITY",
        "symbol": symbol,
        "quoteType": "NBBO",
        "realtime": True,
        "reference": {"description": symbol, "exchange": "Q"},
        "quote": {
            **fields,
            "bidSize": 300,
            "askSize": 400,
            "highPrice": fields["lastPrice"] + 1,
            "lowPrice": fields["lastPrice"] - 1,
            "openPrice": fields["closePrice"] + 0.5,
            "totalVolume": 1_234_567,
            "quoteTime": quote_ms,
            "tradeTime": quote_ms - 10,
            "netChange": fields["lastPrice"] - fields["closePrice"],
        },
    }


def _contract(symbol: str, put_call: str, strike: float, bid: float, ask: float) -> dict[str, Any]:
    return {
        "putCall": put_call,
        "symbol": symbol,
        "description": symbol,
        "bid": bid,
        "ask": ask,
        "last": round((bid + ask) / 2, 2),
        "mark": round((bid + ask) / 2, 2),
        "totalVolume": 12,
        "openInterest": 345,
        "volatility": 25.0,
        "strikePrice": strike,
        "expirationDate": "2026-06-19T20:00:00.000+00:00",
        "daysToExpiration": 169,
        "multiplier": 100.0,
        "optionRoot": "AAPL",
    }


def chain_body() -> dict[str, Any]:
    """A two-strike AAPL chain in Schwab's callExpDateMap / putExpDateMap shape."""
    return {
        "symbol": "AAPL",
        "status": "SUCCESS",
        "underlying": {
            "symbol": "AAPL",
            "bid": 189.9,
            "ask": 190.1,
            "last": 190.0,
            "close": 188.0,
            "quoteTime": QUOTE_MS,
            "totalVolume": 1_234_567,
        },
        "strategy": "SINGLE",
        "isDelayed": False,
        "isIndex": False,
        "interestRate": 4.5,
        "underlyingPrice": 190.0,
        "callExpDateMap": {
            "2026-06-19:169": {
                "180.0": [_contract("AAPL  260619C00180000", "CALL", 180.0, 18.1, 18.4)],
                "200.0": [_contract("AAPL  260619C00200000", "CALL", 200.0, 9.0, 9.2)],
            }
        },
        "putExpDateMap": {
            "2026-06-19:169": {
                "180.0": [_contract("AAPL  260619P00180000", "PUT", 180.0, 5.3, 5.5)],
                "200.0": [_contract("AAPL  260619P00200000", "PUT", 200.0, 15.1, 15.4)],
            }
        },
    }


# --- Trader API data ------------------------------------------------------------------------


def _position(
    asset: str, symbol: str, long: float, short: float, average: float, value: float, **extra: Any
) -> dict[str, Any]:
    instrument: dict[str, Any] = {"assetType": asset, "cusip": "000000000", "symbol": symbol}
    instrument.update(extra)
    body: dict[str, Any] = {
        "shortQuantity": short,
        "averagePrice": average,
        "currentDayProfitLoss": 0.0,
        "longQuantity": long,
        "settledLongQuantity": long,
        "settledShortQuantity": short,
        "instrument": instrument,
        "marketValue": value,
        "maintenanceRequirement": 0.0,
        "currentDayCost": 0.0,
    }
    if long:
        body["averageLongPrice"] = average
        body["taxLotAverageLongPrice"] = average
    if short:
        body["averageShortPrice"] = average
    return body


def margin_account() -> dict[str, Any]:
    """A margin account with equities, an ETF, a fractional share, a long call, a short put
    and a bond (which OPTIX skips)."""
    return {
        "securitiesAccount": {
            "type": "MARGIN",
            "accountNumber": "12345678",
            "roundTrips": 0,
            "isDayTrader": False,
            "isClosingOnlyRestricted": False,
            "pfcbFlag": False,
            "positions": [
                _position("EQUITY", "AAPL", 100, 0, 150.2512, 19000.0, description="Apple"),
                _position("COLLECTIVE_INVESTMENT", "SPY", 10, 0, 500.1, 5400.0),
                _position("EQUITY", "AMZN", 2.5, 0, 175.3, 450.0),
                _position(
                    "OPTION",
                    "AAPL  260619C00200000",
                    2,
                    0,
                    9.1,
                    1820.0,
                    putCall="CALL",
                    underlyingSymbol="AAPL",
                    description="APPLE INC 06/19/2026 $200 Call",
                ),
                _position(
                    "OPTION",
                    "MSFT  260619P00400000",
                    0,
                    1,
                    12.35,
                    -1150.0,
                    putCall="PUT",
                    underlyingSymbol="MSFT",
                ),
                _position("FIXED_INCOME", "912828XX1", 1000, 0, 99.5, 995.0),
            ],
            "initialBalances": {"cashBalance": 2400.0, "liquidationValue": 36000.0},
            "currentBalances": {
                "cashBalance": 2500.5,
                "moneyMarketFund": 1000.0,
                "buyingPower": 15000.25,
                "availableFunds": 7500.12,
                "liquidationValue": 36789.12,
                "equity": 36789.12,
                "longMarketValue": 26665.0,
            },
            "projectedBalances": {"buyingPower": 15000.25},
        },
        "aggregatedBalance": {"currentLiquidationValue": 38989.12, "liquidationValue": 38989.12},
    }


def cash_account() -> dict[str, Any]:
    """A cash account with no positions."""
    return {
        "securitiesAccount": {
            "type": "CASH",
            "accountNumber": "87654321",
            "roundTrips": 0,
            "isDayTrader": False,
            "positions": [],
            "currentBalances": {
                "totalCash": 1200.0,
                "cashAvailableForTrading": 1150.0,
                "liquidationValue": 1200.0,
            },
        }
    }


def _schwab_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S+0000")


def history(
    first: datetime = datetime(2024, 1, 15, 15, 0, tzinfo=UTC), months: int = 30
) -> list[dict[str, Any]]:
    """One transaction a month from `first`, cycling through trades (with fee items), option
    trades, dividends, ACH in and out, journals and a fee-only entry, plus one canceled entry."""
    found: list[dict[str, Any]] = []
    for i in range(months):
        when = first + timedelta(days=30 * i)
        kind = i % 6
        base: dict[str, Any] = {
            "activityId": 90_000_000_000 + i,
            "time": _schwab_time(when),
            "accountNumber": "12345678",
            "status": "VALID",
            "subAccount": "MARGIN",
            "tradeDate": _schwab_time(when),
        }
        if kind == 0:
            base |= {
                "type": "TRADE",
                "description": "Bought 10 AAPL",
                "netAmount": -1900.65,
                "transferItems": [
                    {
                        "instrument": {"assetType": "CURRENCY", "symbol": "CURRENCY_USD"},
                        "amount": 0.0,
                        "cost": -0.65,
                        "feeType": "COMMISSION",
                    },
                    {
                        "instrument": {"assetType": "EQUITY", "symbol": "AAPL"},
                        "amount": 10.0,
                        "cost": -1900.0,
                        "price": 190.0,
                        "positionEffect": "OPENING",
                    },
                ],
            }
        elif kind == 1:
            base |= {
                "type": "TRADE",
                "description": "Sold 1 MSFT 06/19/2026 400.00 P",
                "netAmount": 1234.34,
                "transferItems": [
                    {
                        "instrument": {"assetType": "CURRENCY"},
                        "cost": -0.66,
                        "feeType": "OPT_REG_FEE",
                    },
                    {
                        "instrument": {
                            "assetType": "OPTION",
                            "symbol": "MSFT  260619P00400000",
                            "putCall": "PUT",
                        },
                        "amount": -1.0,
                        "cost": 1235.0,
                        "price": 12.35,
                        "positionEffect": "OPENING",
                    },
                ],
            }
        elif kind == 2:
            base |= {
                "type": "DIVIDEND_OR_INTEREST",
                "description": "Qualified dividend",
                "netAmount": 24.0,
            }
        elif kind == 3:
            base |= {"type": "ACH_RECEIPT", "description": "Deposit", "netAmount": 5000.0}
        elif kind == 4:
            base |= {"type": "ACH_DISBURSEMENT", "description": "Withdrawal", "netAmount": -750.0}
        else:
            base |= {
                "type": "CASH_DISBURSEMENT",
                "description": "Wire fee",
                "netAmount": -25.0,
                "transferItems": [{"amount": 0.0, "cost": -25.0, "feeType": "WIRE_FEE"}],
            }
        found.append(base)
    found.append(
        {
            "activityId": 90_000_099_999,
            "time": _schwab_time(first + timedelta(days=3)),
            "type": "JOURNAL",
            "status": "CANCELED",
            "netAmount": 1.0,
        }
    )
    return found


def sized_account(number: str, symbols: Sequence[str]) -> dict[str, Any]:
    """A margin account holding every symbol of `symbols` long: 10 shares of a ticker at 100.00,
    1 contract of an OCC option at 5.00 (a data set of any size, for benchmarks)."""
    positions = []
    for symbol in symbols:
        if len(symbol) > 6 and " " in symbol:
            underlying = symbol.split(" ", 1)[0]
            right = "CALL" if symbol[12] == "C" else "PUT"
            positions.append(
                _position(
                    "OPTION", symbol, 1, 0, 5.0, 500.0, putCall=right, underlyingSymbol=underlying
                )
            )
        else:
            positions.append(_position("EQUITY", symbol, 10, 0, 100.0, 1000.0))
    return {
        "securitiesAccount": {
            "type": "MARGIN",
            "accountNumber": number,
            "roundTrips": 0,
            "isDayTrader": False,
            "positions": positions,
            "currentBalances": {
                "cashBalance": 10_000.0,
                "buyingPower": 20_000.0,
                "availableFunds": 10_000.0,
                "liquidationValue": 10_000.0 + sum(p["marketValue"] for p in positions),
            },
        }
    }


def sized_history(number: str, count: int, last: datetime, days: int) -> list[dict[str, Any]]:
    """`count` valid transactions of account `number`, evenly spread over the `days` before
    `last`: share trades with a commission, dividends and ACH deposits in turn."""
    step = timedelta(days=days) / max(count, 1)
    found: list[dict[str, Any]] = []
    for i in range(count):
        when = _schwab_time(last - step * (count - 1 - i))
        base: dict[str, Any] = {
            "activityId": 50_000_000_000 + i,
            "time": when,
            "tradeDate": when,
            "accountNumber": number,
            "status": "VALID",
            "subAccount": "MARGIN",
        }
        if i % 3 == 0:
            base |= {
                "type": "TRADE",
                "description": f"Bought {1 + i % 50} AAPL",
                "netAmount": -(190.0 * (1 + i % 50)) - 0.65,
                "transferItems": [
                    {
                        "instrument": {"assetType": "CURRENCY", "symbol": "CURRENCY_USD"},
                        "amount": 0.0,
                        "cost": -0.65,
                        "feeType": "COMMISSION",
                    },
                    {
                        "instrument": {"assetType": "EQUITY", "symbol": "AAPL"},
                        "amount": float(1 + i % 50),
                        "cost": -(190.0 * (1 + i % 50)),
                        "price": 190.0,
                        "positionEffect": "OPENING",
                    },
                ],
            }
        elif i % 3 == 1:
            base |= {"type": "DIVIDEND_OR_INTEREST", "description": "Dividend", "netAmount": 1.25}
        else:
            base |= {"type": "ACH_RECEIPT", "description": "Deposit", "netAmount": 100.0}
        found.append(base)
    return found


# --- faults ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """One scripted failure: `status` with a JSON error body ("status"), an HTML error page
    ("html"), a 200 with truncated JSON ("malformed"), or a connection closed without an answer
    ("drop"); only on requests whose path contains `path` when set."""

    kind: Literal["status", "html", "malformed", "drop"] = "status"
    status: int = 500
    retry_after: str | None = None
    path: str = ""


@dataclass(frozen=True)
class Call:
    """One request as the stand-in saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, list[str]]
    authorization: str
    # Arrival time on StandIn.clock (a test may install a virtual clock).
    at: float


@dataclass
class _Code:
    redirect_uri: str
    challenge: str
    method: str
    issued: float
    used: bool = False


@dataclass
class _Refresh:
    expires: float
    dead: bool = False


@dataclass
class StandIn:
    """The running stand-in: its URLs, the requests it saw, its data and failure switches."""

    url: str = ""
    base_url: str = ""
    # The market data API's fixed token (issued access tokens work there too).
    token: str = "test-token"
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    # Registered callback URLs; empty accepts any.
    redirect_uris: set[str] = field(default_factory=lambda: {REDIRECT_URI})
    require_pkce: bool = False
    access_ttl: int = ACCESS_TTL_SECONDS
    requests: list[tuple[str, dict[str, list[str]], str]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    # Status codes to answer (in order, any path) before behaving normally.
    failures: deque[int] = field(default_factory=deque)
    # Retry-After sent with `failures` 429s (0 keeps retrying clients quick).
    retry_after: str = "0"
    faults: deque[Fault] = field(default_factory=deque)
    quote_ms: int = QUOTE_MS
    accounts: list[dict[str, Any]] = field(
        default_factory=lambda: [margin_account(), cash_account()]
    )
    hashes: dict[str, str] = field(
        default_factory=lambda: {"12345678": "HASH-MARGIN-5678", "87654321": "HASH-CASH-4321"}
    )
    transactions: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {"12345678": history(), "87654321": []}
    )
    revoked: list[str] = field(default_factory=list)
    clock: Callable[[], float] = time.monotonic
    lock: threading.Condition = field(default_factory=threading.Condition)
    _codes: dict[str, _Code] = field(default_factory=dict)
    _access: dict[str, float] = field(default_factory=dict)
    _refresh: dict[str, _Refresh] = field(default_factory=dict)

    @property
    def oauth_url(self) -> str:
        """Base of the OAuth endpoints (…/v1/oauth)."""
        return f"{self.base_url}/v1/oauth"

    @property
    def trader_url(self) -> str:
        """Base of the Trader API (…/trader/v1)."""
        return f"{self.base_url}/trader/v1"

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> bool:
        """Block (call via asyncio.to_thread) until `count` requests arrived."""
        with self.lock:
            return self.lock.wait_for(lambda: len(self.requests) >= count, timeout)

    def calls_to(self, fragment: str) -> list[Call]:
        """The recorded calls whose path contains `fragment`."""
        with self.lock:
            return [c for c in self.calls if fragment in c.path]

    def expire_access_tokens(self) -> None:
        """Every issued access token is now expired (401 on the Trader API)."""
        with self.lock:
            for token in self._access:
                self._access[token] = 0.0

    def kill_refresh_tokens(self) -> None:
        """Every issued refresh token is now dead (401 on refresh)."""
        with self.lock:
            for state in self._refresh.values():
                state.dead = True

    def issue_tokens(self) -> tuple[str, str]:
        """A fresh (access, refresh) pair, as a completed sign-in would give."""
        with self.lock:
            access = "AT-" + secrets.token_urlsafe(24)
            refresh = "RT-" + secrets.token_urlsafe(24)
            self._access[access] = time.time() + self.access_ttl
            self._refresh[refresh] = _Refresh(time.time() + REFRESH_TTL.total_seconds())
            return access, refresh

    def load(
        self,
        accounts: Sequence[dict[str, Any]],
        transactions: Mapping[str, list[dict[str, Any]]] | None = None,
    ) -> None:
        """Serve another data set from now on (every token sees it): `accounts` (e.g.
        sized_account) with hashes "HASH-{number}", and transactions by account number."""
        with self.lock:
            self.accounts = list(accounts)
            numbers = [a["securitiesAccount"]["accountNumber"] for a in accounts]
            self.hashes = {n: f"HASH-{n}" for n in numbers}
            self.transactions = {n: list((transactions or {}).get(n, [])) for n in numbers}

    def _take_fault(self, path: str) -> Fault | None:
        if self.failures:
            status = self.failures.popleft()
            return Fault("status", status, retry_after=self.retry_after if status == 429 else None)
        for fault in self.faults:
            if fault.path in path:
                self.faults.remove(fault)
                return fault
        return None

    # --- market data ----------------------------------------------------------------------

    def respond(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        """Status and JSON body for a market data GET."""
        if path.endswith("/quotes"):
            wanted = query.get("symbols", [""])[0].split(",")
            body: dict[str, Any] = {
                s: _quote_entry(s, EQUITIES[s], self.quote_ms) for s in wanted if s in EQUITIES
            }
            invalid = [s for s in wanted if s not in EQUITIES]
            if invalid:
                body["errors"] = {"invalidSymbols": invalid}
            return 200, body
        if path.endswith("/chains"):
            if query.get("symbol") != ["AAPL"]:
                return 200, {"symbol": query.get("symbol", [""])[0], "status": "FAILED"}
            return 200, chain_body()
        if path.endswith("/expirationchain"):
            if query.get("symbol") != ["AAPL"]:
                return 200, {"expirationList": []}
            return 200, {
                "expirationList": [
                    {
                        "expirationDate": "2026-06-19",
                        "daysToExpiration": 169,
                        "expirationType": "S",
                    },
                    {"expirationDate": "2026-01-09", "daysToExpiration": 8, "expirationType": "W"},
                ]
            }
        if path.endswith("/pricehistory"):
            start = int(query["startDate"][0])
            step = {"minute": int(query["frequency"][0]) * 60_000, "daily": 86_400_000}[
                query["frequencyType"][0]
            ]
            candles = [
                {
                    "open": 100.0 + i,
                    "high": 101.0 + i,
                    "low": 99.0 + i,
                    "close": 100.5 + i,
                    "volume": 1000 + i,
                    "datetime": start + i * step,
                }
                for i in range(4)
            ]
            return 200, {"symbol": query["symbol"][0], "empty": False, "candles": candles}
        return 404, {"errors": [{"status": 404, "title": "Not Found"}]}

    # --- OAuth ----------------------------------------------------------------------------

    def authorize(self, query: dict[str, list[str]]) -> tuple[int, str]:
        """(status, Location or error text) for GET /v1/oauth/authorize: sign-in approved."""
        one = {k: v[0] for k, v in query.items()}
        if one.get("client_id") != self.client_id:
            return 400, "unknown client_id"
        if one.get("response_type") != "code":
            return 400, "response_type must be code"
        redirect = one.get("redirect_uri", "")
        if not redirect or (self.redirect_uris and redirect not in self.redirect_uris):
            return 400, "redirect_uri is not registered"
        challenge = one.get("code_challenge", "")
        method = one.get("code_challenge_method", "")
        if challenge and method != "S256":
            return 400, "only S256 is supported"
        if self.require_pkce and not challenge:
            return 400, "code_challenge is required"
        # Schwab codes end in "@", which redirects carry as %40: clients must decode them.
        code = "C0." + secrets.token_urlsafe(16) + "@"
        with self.lock:
            self._codes[code] = _Code(redirect, challenge, method, time.time())
        params = {"code": code}
        if "state" in one:
            params["state"] = one["state"]
        return 302, f"{redirect}?{urlencode(params)}"

    def _client_ok(self, authorization: str) -> bool:
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        return authorization == f"Basic {expected}"

    def token_endpoint(self, authorization: str, form: dict[str, list[str]]) -> tuple[int, Any]:
        """Status and body for POST /v1/oauth/token."""
        if not self._client_ok(authorization):
            return 401, {"error": "invalid_client", "error_description": "Unauthorized"}
        one = {k: v[0] for k, v in form.items()}
        grant = one.get("grant_type")
        if grant == "authorization_code":
            return self._redeem(one)
        if grant == "refresh_token":
            with self.lock:
                state = self._refresh.get(one.get("refresh_token", ""))
                if state is None or state.dead or state.expires < time.time():
                    return 401, {"error": "invalid_grant", "error_description": "refresh failed"}
                access = "AT-" + secrets.token_urlsafe(24)
                self._access[access] = time.time() + self.access_ttl
            # Like Schwab: a new access token, the same refresh token, its expiry unchanged.
            return 200, self._token_body(access, one["refresh_token"])
        return 400, {"error": "unsupported_grant_type"}

    def _redeem(self, one: dict[str, str]) -> tuple[int, Any]:
        with self.lock:
            code = self._codes.get(one.get("code", ""))
            if code is None or code.used or code.issued + CODE_TTL_SECONDS < time.time():
                return 400, {"error": "invalid_grant", "error_description": "bad code"}
            code.used = True
            if one.get("redirect_uri") != code.redirect_uri:
                return 400, {"error": "invalid_grant", "error_description": "redirect mismatch"}
            if code.challenge:
                verifier = one.get("code_verifier", "")
                digest = hashlib.sha256(verifier.encode()).digest()
                actual = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
                if actual != code.challenge:
                    return 400, {"error": "invalid_grant", "error_description": "PKCE failed"}
        access, refresh = self.issue_tokens()
        return 200, self._token_body(access, refresh)

    def _token_body(self, access: str, refresh: str) -> dict[str, Any]:
        return {
            "expires_in": self.access_ttl,
            "token_type": "Bearer",
            "scope": "api",
            "refresh_token": refresh,
            "access_token": access,
            "id_token": "eyJ.stand-in.id",
        }

    def revoke_endpoint(self, authorization: str, form: dict[str, list[str]]) -> tuple[int, Any]:
        """Status and body for POST /v1/oauth/revoke (RFC 7009)."""
        if not self._client_ok(authorization):
            return 401, {"error": "invalid_client"}
        token = form.get("token", [""])[0]
        with self.lock:
            state = self._refresh.get(token)
            if state is not None:
                state.dead = True
            self.revoked.append(token)
        return 200, None

    # --- Trader API -----------------------------------------------------------------------

    def access_ok(self, authorization: str) -> bool:
        """Whether a Bearer token is a live issued access token."""
        token = authorization.removeprefix("Bearer ")
        with self.lock:
            return self._access.get(token, 0.0) > time.time()

    def trader(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        """Status and body for a Trader API GET (the caller checked the token)."""
        rest = path.removeprefix("/trader/v1")
        with_positions = "positions" in query.get("fields", [""])[0].split(",")
        if rest == "/accounts/accountNumbers":
            return 200, [{"accountNumber": n, "hashValue": h} for n, h in self.hashes.items()]
        if rest == "/accounts":
            return 200, [self._account(a, with_positions) for a in self.accounts]
        match = re.fullmatch(r"/accounts/([^/]+)(/transactions)?", rest)
        number = next((n for n, h in self.hashes.items() if match and h == match.group(1)), None)
        if match is None or number is None:
            return 404, {"message": "Not Found", "errors": ["account not found"]}
        if match.group(2):
            return self._transactions(number, query)
        account = next(
            a for a in self.accounts if a["securitiesAccount"]["accountNumber"] == number
        )
        return 200, self._account(account, with_positions)

    @staticmethod
    def _account(account: dict[str, Any], with_positions: bool) -> dict[str, Any]:
        copy: dict[str, Any] = json.loads(json.dumps(account))
        if not with_positions:
            copy["securitiesAccount"].pop("positions", None)
        return copy

    def _transactions(self, number: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        start_text = query.get("startDate", [""])[0]
        end_text = query.get("endDate", [""])[0]
        if not SCHWAB_TIME.match(start_text) or not SCHWAB_TIME.match(end_text):
            return 400, {"message": "startDate and endDate must be yyyy-MM-dd'T'HH:mm:ss.SSSZ"}
        start = datetime.fromisoformat(start_text)
        end = datetime.fromisoformat(end_text)
        if end < start or end - start > MAX_RANGE:
            return 400, {"message": "the date range must be at most one year"}
        types = set(query.get("types", [""])[0].split(","))
        if not types or not types <= TRANSACTION_TYPES:
            return 400, {"message": "types is required and must be known types"}
        return 200, [
            t
            for t in self.transactions.get(number, [])
            if t["type"] in types and start <= datetime.fromisoformat(t["time"]) <= end
        ]


@contextmanager
def schwab_standin(*, keep_alive: bool = False) -> Iterator[StandIn]:
    """Serve a StandIn on 127.0.0.1 (random port) for the duration of the context; with
    `keep_alive`, over persistent HTTP/1.1 connections (faster, for benchmarks)."""
    state = StandIn()

    class Handler(BaseHTTPRequestHandler):
        """Routes each request to the StandIn, after recording it and applying any fault."""

        protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"
        # Headers and body go out in separate writes: without this, Nagle's algorithm holds
        # the body until the client's delayed ACK (~40 ms) on a persistent connection.
        disable_nagle_algorithm = keep_alive

        def _record(
            self, method: str
        ) -> tuple[str, dict[str, list[str]], dict[str, list[str]], Fault | None]:
            parsed = urlparse(self.path)
            query = parse_qs(parsed.query)
            form: dict[str, list[str]] = {}
            if method == "POST":
                length = int(self.headers.get("Content-Length", "0") or 0)
                form = parse_qs(self.rfile.read(length).decode())
            auth = self.headers.get("Authorization", "")
            with state.lock:
                state.requests.append((parsed.path, query, auth))
                state.calls.append(Call(method, parsed.path, query, form, auth, state.clock()))
                fault = state._take_fault(parsed.path)
                state.lock.notify_all()
            return parsed.path, query, form, fault

        def do_GET(self) -> None:
            """OAuth authorize, the Trader API and the market data API."""
            path, query, _, fault = self._record("GET")
            if fault is not None:
                self._fault(fault)
                return
            auth = self.headers.get("Authorization", "")
            if path.startswith("/v1/oauth/authorize"):
                status, where = state.authorize(query)
                if status == 302:
                    self.send_response(302)
                    self.send_header("Location", where)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self._html(status, where)
            elif path.startswith("/trader/v1"):
                if not state.access_ok(auth):
                    self._send(401, {"message": "Unauthorized", "errors": ["invalid token"]})
                else:
                    self._send(*state.trader(path, query))
            elif auth != f"Bearer {state.token}" and not state.access_ok(auth):
                self._send(401, {"error": "invalid_token"})
            else:
                self._send(*state.respond(path, query))

        def do_POST(self) -> None:
            """The OAuth token and revoke endpoints."""
            path, _, form, fault = self._record("POST")
            if fault is not None:
                self._fault(fault)
                return
            auth = self.headers.get("Authorization", "")
            if path == "/v1/oauth/token":
                self._send(*state.token_endpoint(auth, form))
            elif path == "/v1/oauth/revoke":
                self._send(*state.revoke_endpoint(auth, form))
            else:
                self._send(404, {"message": "Not Found"})

        def _fault(self, fault: Fault) -> None:
            if fault.kind == "drop":
                # Close without a status line: the client sees the server disconnect.
                self.close_connection = True
                return
            if fault.kind == "html":
                self._html(fault.status, "Service temporarily unavailable", fault.retry_after)
            elif fault.kind == "malformed":
                self._raw(
                    200, b'{"securitiesAccount": {"type": "MARGIN", "accountNu', "application/json"
                )
            else:
                self._send(fault.status, {"errors": [{"status": fault.status}]}, fault.retry_after)

        def _html(self, status: int, text: str, retry_after: str | None = None) -> None:
            page = f"<!DOCTYPE html><html><body><h1>{status}</h1><p>{text}</p></body></html>"
            self._raw(status, page.encode(), "text/html; charset=utf-8", retry_after)

        def _send(self, status: int, body: Any, retry_after: str | None = None) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self._raw(status, data, "application/json", retry_after)

        def _raw(
            self, status: int, data: bytes, content_type: str, retry_after: str | None = None
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            if retry_after is not None:
                self.send_header("Retry-After", retry_after)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            """Keep test output quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    state.url = f"{state.base_url}/marketdata/v1"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
