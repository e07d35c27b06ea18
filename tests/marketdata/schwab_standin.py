"""A local stand-in for Schwab's market data API (stdlib http.server in a thread), answering
like the documented /quotes, /chains, /expirationchain and /pricehistory endpoints."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

QUOTE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z

EQUITIES: dict[str, dict[str, Any]] = {
    "AAPL": {"bidPrice": 189.9, "askPrice": 190.1, "lastPrice": 190.0, "closePrice": 188.0},
    "MSFT": {"bidPrice": 409.5, "askPrice": 410.5, "lastPrice": 410.0, "closePrice": 405.0},
}


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


@dataclass
class StandIn:
    """The running stand-in: its URL, the requests it saw, and scripted failures."""

    url: str = ""
    token: str = "test-token"
    requests: list[tuple[str, dict[str, list[str]], str]] = field(default_factory=list)
    # Status codes to answer (in order) before behaving normally.
    failures: deque[int] = field(default_factory=deque)
    quote_ms: int = QUOTE_MS
    lock: threading.Condition = field(default_factory=threading.Condition)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> bool:
        """Block (call via asyncio.to_thread) until `count` requests arrived."""
        with self.lock:
            return self.lock.wait_for(lambda: len(self.requests) >= count, timeout)

    def respond(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        """Status and JSON body for a GET."""
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


@contextmanager
def schwab_standin() -> Iterator[StandIn]:
    """Serve a StandIn on 127.0.0.1 (random port) for the duration of the context."""
    state = StandIn()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parsed = urlparse(self.path)
            query = parse_qs(parsed.query)
            with state.lock:
                state.requests.append((parsed.path, query, self.headers.get("Authorization", "")))
                failure = state.failures.popleft() if state.failures else None
                state.lock.notify_all()
            if self.headers.get("Authorization") != f"Bearer {state.token}":
                self._send(401, {"error": "invalid_token"})
            elif failure is not None:
                self._send(failure, {"errors": [{"status": failure}]}, retry_after="0")
            else:
                self._send(*state.respond(parsed.path, query))

        def _send(self, status: int, body: Any, retry_after: str | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if retry_after is not None and status == 429:
                self.send_header("Retry-After", retry_after)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            """Keep test output quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/marketdata/v1"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
