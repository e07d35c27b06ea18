"""Browser-style callers through Envoy: connect-es in grpc-web mode, CORS, bad input."""

from __future__ import annotations

import json
import queue
from collections.abc import Iterator

import httpx
import pytest

from optix.marketdata.v1 import marketdata_service_pb2
from tests.e2e.accounts import PASSWORD, new_email
from tests.e2e.grpcweb import call, frame
from tests.e2e.node import PROBE, run_json, streaming
from tests.e2e.stack import Edge

GET_QUOTE = "/optix.marketdata.v1.MarketDataService/GetQuote"
ALLOWED_ORIGIN = "http://localhost:5173"


@pytest.fixture
def http(edge: Edge) -> Iterator[httpx.Client]:
    # Each request must answer well within this: a hang fails the test instead of blocking it.
    with httpx.Client(base_url=edge.url, timeout=10.0) as client:
        yield client


def test_unary_calls_over_grpc_web(edge: Edge) -> None:
    email = new_email("web")
    (registered,) = run_json(
        PROBE,
        "register",
        "--edge",
        edge.url,
        "--email",
        email,
        "--password",
        PASSWORD,
        "--name",
        "Web",
    )
    assert registered["ok"] and registered["email"] == email
    (login,) = run_json(
        PROBE, "login", "--edge", edge.url, "--email", email, "--password", PASSWORD
    )
    assert login == {"ok": True, "keys": login["keys"], "signedIn": True} and login["keys"] >= 1
    (quote,) = run_json(
        PROBE,
        "quote",
        "--edge",
        edge.url,
        "--email",
        email,
        "--password",
        PASSWORD,
        "--symbol",
        "aapl",
    )
    assert quote["ok"] and quote["symbol"] == "AAPL" and quote["last"] > 0


def _next_record(lines: queue.Queue[str]) -> dict[str, object]:
    while True:
        line = lines.get(timeout=30)
        assert line, "the probe exited early"
        if line.startswith("{"):
            record: dict[str, object] = json.loads(line)
            return record


def test_server_stream_messages_arrive_one_by_one(edge: Edge) -> None:
    # The server never ends this stream by itself: if Envoy or the transport buffered messages
    # until the end, not even the first one would reach the client.
    email = new_email("stream")
    args = (
        "stream",
        "--edge",
        edge.url,
        "--email",
        email,
        "--password",
        PASSWORD,
        "--register",
        "1",
        "--symbols",
        "AAPL,MSFT",
        "--count",
        "1000000",
        "--heartbeat",
        "1",
    )
    with streaming(PROBE, *args) as (proc, pump):
        assert _next_record(pump.events).get("started") is True
        first, second, third = (_next_record(pump.events) for _ in range(3))
        assert proc.poll() is None, "messages must arrive while the stream is still open"
    assert [first["message"], second["message"], third["message"]] == [1, 2, 3]
    assert "error" not in first and first["kind"] in {"quotes", "heartbeat"}
    assert int(str(first["t"])) <= int(str(second["t"])) <= int(str(third["t"]))


def test_stream_outlives_envoys_default_route_timeout(edge: Edge) -> None:
    # Envoy's default route timeout is 15 s; the streaming routes set 0s (none).
    email = new_email("long")
    records = run_json(
        PROBE,
        "stream",
        "--edge",
        edge.url,
        "--email",
        email,
        "--password",
        PASSWORD,
        "--register",
        "1",
        "--symbols",
        "SPY",
        "--seconds",
        "17",
        "--heartbeat",
        "2",
        timeout=90,
    )
    end = records[-1]
    assert end.get("end") == "client-cancelled", end
    assert int(end["t"]) >= 17_000 and int(end["received"]) > 0


def test_cors_preflight_allows_local_origins_only(http: httpx.Client) -> None:
    headers = {
        "Origin": ALLOWED_ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-grpc-web,x-user-agent,authorization",
    }
    allowed = http.options(GET_QUOTE, headers=headers)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    allow_headers = allowed.headers["access-control-allow-headers"].lower()
    for name in ("content-type", "x-grpc-web", "x-user-agent", "authorization", "grpc-timeout"):
        assert name in allow_headers
    assert "POST" in allowed.headers["access-control-allow-methods"]
    denied = http.options(GET_QUOTE, headers={**headers, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in denied.headers


def test_cors_exposes_grpc_status_to_scripts(http: httpx.Client) -> None:
    body = frame(marketdata_service_pb2.GetQuoteRequest(symbol="AAPL").SerializeToString())
    response = http.post(
        GET_QUOTE,
        content=body,
        headers={"content-type": "application/grpc-web+proto", "origin": ALLOWED_ORIGIN},
    )
    exposed = response.headers["access-control-expose-headers"].lower()
    assert {"grpc-status", "grpc-message", "grpc-status-details-bin"} <= {
        h.strip() for h in exposed.split(",")
    }


def test_malformed_frame_is_a_grpc_error_not_a_hang(http: httpx.Client) -> None:
    truncated = b"\x00\x00\x00\x00\x10abc"  # announces 16 bytes, sends 3
    reply = call(http, GET_QUOTE, truncated)
    assert (reply.http_status, reply.grpc_status) == (200, 3)
    assert "malformed" in reply.grpc_message
    short_header = b"\x00\x00\x00"
    assert call(http, GET_QUOTE, short_header).grpc_status == 3
    garbage = frame(b"\xff\xff\xff\xff")
    assert call(http, GET_QUOTE, garbage).grpc_status == 3  # INVALID_ARGUMENT from the server


def test_wrong_content_type_is_refused(http: httpx.Client) -> None:
    response = http.post(GET_QUOTE, content=b"symbol=AAPL", headers={"content-type": "text/plain"})
    assert response.status_code == 415
    assert "application/grpc" in response.text


def test_unknown_path_is_unimplemented(http: httpx.Client) -> None:
    for path in ("/optix.nope.v1.NopeService/Do", "/optix.user.v1.UserService/NoSuchMethod"):
        reply = call(http, path, frame(b""))
        assert reply.grpc_status == 12, (path, reply)


def test_oversized_request_is_refused(http: httpx.Client) -> None:
    big = frame(
        marketdata_service_pb2.GetQuoteRequest(symbol="A" * (5 * 1024 * 1024)).SerializeToString()
    )
    reply = call(http, GET_QUOTE, big)
    assert reply.grpc_status == 8  # RESOURCE_EXHAUSTED, decided before any byte goes upstream
