"""Regression tests for what a hostile client found at the edge (issue "Hardening"), each
through the real Envoy and the real server: poisoning, held requests, malformed grpc-web,
client mistakes answered as server errors, oversized headers, reflection's undecodable bytes."""

from __future__ import annotations

import base64
import concurrent.futures
import time
from collections.abc import Iterator

import grpc
import httpx
import pytest

from optix.user.v1 import user_service_pb2, user_service_pb2_grpc
from tests.e2e.grpcweb import call, frame
from tests.e2e.stack import REQUEST_MESSAGE_TIMEOUT_S, Edge, Process
from tests.support.rawgrpc import raw_call, raw_connection

GET_JWKS = "/optix.user.v1.UserService/GetJwks"
STREAM_QUOTES = "/optix.marketdata.v1.MarketDataService/StreamQuotes"
REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
EMPTY_FRAME = frame(b"")
GRPC_WEB_TEXT = "application/grpc-web-text"
INVALID_ARGUMENT, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, UNIMPLEMENTED = 3, 4, 8, 12
# Slack on top of a timeout for the answer to travel back on a loaded 2-core machine.
SLACK_S = 5.0


@pytest.fixture
def http(edge: Edge) -> Iterator[httpx.Client]:
    # Each request must answer well within this: a hang fails the test instead of blocking it.
    with httpx.Client(base_url=edge.url, timeout=20.0) as client:
        yield client


def _ordinary_calls_with_deadlines(edge: Edge, clients: int, calls_each: int) -> list[str]:
    """GetJwks with a 5 s deadline from several clients at once (native gRPC and grpc-web),
    each on its own connection; returns a description of every failure."""

    def native(_: int) -> list[str]:
        failures = []
        with grpc.insecure_channel(edge.address) as channel:
            stub = user_service_pb2_grpc.UserServiceStub(channel)
            for _ in range(calls_each):
                try:
                    stub.GetJwks(user_service_pb2.GetJwksRequest(), timeout=5)
                except grpc.RpcError as error:
                    failures.append(f"native: {error.code()} {error.details()}")
        return failures

    def web(_: int) -> list[str]:
        failures = []
        with httpx.Client(base_url=edge.url, timeout=10) as client:
            for _ in range(calls_each):
                reply = client.post(
                    GET_JWKS,
                    content=EMPTY_FRAME,
                    headers={"content-type": "application/grpc-web+proto", "grpc-timeout": "5S"},
                )
                if b"grpc-status:0" not in reply.content.replace(b" ", b""):
                    status = reply.headers.get("grpc-status")
                    failures.append(f"grpc-web: {status} {reply.headers.get('grpc-message')}")
        return failures

    with concurrent.futures.ThreadPoolExecutor(clients * 2) as pool:
        results = [*pool.map(native, range(clients)), *pool.map(web, range(clients))]
    return [failure for failures in results for failure in failures]


def test_malformed_headers_do_not_poison_the_edge_for_other_clients(edge: Edge) -> None:
    # Each malformed call on a new connection, as in the report; every one is refused itself.
    malformed = [
        ("grpc-timeout", "-1S"),
        ("grpc-timeout", "1x"),
        ("grpc-timeout", "123456789S"),
        ("grpc-encoding", "no-such-codec"),
        ("grpc-accept-encoding", "gzip;;"),
    ]
    for round_ in range(8):
        for name, value in malformed:
            web = httpx.post(
                f"{edge.url}{GET_JWKS}",
                content=EMPTY_FRAME,
                headers={"content-type": "application/grpc-web+proto", name: value},
                timeout=10,
            )
            assert web.headers.get("grpc-status") == str(INVALID_ARGUMENT), (name, value)
            native = raw_call(edge.address, GET_JWKS, EMPTY_FRAME, [(name, value)])
            assert native.grpc_status == INVALID_ARGUMENT, (round_, name, value, native)
    assert _ordinary_calls_with_deadlines(edge, clients=3, calls_each=20) == []


def test_server_keeps_no_header_state_between_calls_on_one_connection(backend: Process) -> None:
    # The mechanism behind the poisoning, without the edge: one connection multiplexing calls
    # the way a proxy's upstream connection does. With an HPACK dynamic table, the first call's
    # malformed grpc-timeout was remembered and every later deadline on it refused.
    with raw_connection(backend.address) as connection:
        connection.call(GET_JWKS, EMPTY_FRAME, [("grpc-timeout", "-1S")])
        later = [
            connection.call(GET_JWKS, EMPTY_FRAME, [("grpc-timeout", value)])
            for value in ("5S", "4999m", "5S")
        ]
    assert [reply.grpc_status for reply in later] == [0, 0, 0], later


@pytest.mark.parametrize("via", ["direct", "edge"])
def test_unary_call_without_its_message_ends_at_the_server_limit(
    via: str, backend: Process, edge: Edge
) -> None:
    address = backend.address if via == "direct" else edge.address
    # No deadline from the client, and the request never ends.
    reply = raw_call(address, GET_JWKS, b"", end_stream=False, timeout=30)
    assert reply.grpc_status == DEADLINE_EXCEEDED, reply
    assert reply.seconds < REQUEST_MESSAGE_TIMEOUT_S + SLACK_S
    # Half-closed without any message: refused at once.
    empty = raw_call(address, GET_JWKS, b"", timeout=30)
    assert empty.grpc_status == INVALID_ARGUMENT, empty
    assert empty.seconds < SLACK_S


@pytest.mark.edge_env(OPTIX_ENVOY_REQUEST_TIMEOUT_S="1")
@pytest.mark.parametrize("path", [GET_JWKS, STREAM_QUOTES])
def test_edge_ends_incomplete_grpc_web_requests(custom_edge: Edge, path: str) -> None:
    # A grpc-web body that stops short is held by the edge (it checks whole bodies), never by
    # the server: the edge's request timeout ends it, for unary and streaming methods alike.
    started = time.monotonic()
    with httpx.Client(base_url=custom_edge.url, timeout=30) as client:

        def body() -> Iterator[bytes]:
            yield b"\x00\x00"
            time.sleep(10)  # the client stalls; the edge must not wait for it

        response = client.post(
            path, content=body(), headers={"content-type": "application/grpc-web+proto"}
        )
    assert response.headers.get("grpc-status") == str(DEADLINE_EXCEEDED), response.headers
    assert time.monotonic() - started < 1 + SLACK_S + 10


def test_truncated_and_invalid_grpc_web_text_is_refused_at_once(http: httpx.Client) -> None:
    truncated = base64.b64encode(b"\x00\x00\x00\x00\x10abc")  # announces 16 bytes, sends 3
    cases = {
        "truncated": truncated,
        "not base64": b"!!!!",
        "not a whole group": b"AAAAA",
        "padding inside": b"AA=AAAAA",
        "whitespace": b"AAAA AAA",
    }
    for name, body in cases.items():
        started = time.monotonic()
        reply = call(http, GET_JWKS, body, GRPC_WEB_TEXT)
        assert (reply.http_status, reply.grpc_status) == (200, INVALID_ARGUMENT), (name, reply)
        assert time.monotonic() - started < SLACK_S, name
    assert call(http, GET_JWKS, base64.b64encode(EMPTY_FRAME), GRPC_WEB_TEXT).grpc_status == 0


def test_client_mistakes_are_not_answered_as_server_errors(edge: Edge, http: httpx.Client) -> None:
    # A compressed grpc-web request (with or without grpc-encoding) is not supported: it could
    # only reach the server's decompressor, which answers a corrupt message as INTERNAL.
    compressed = frame(b"\x08\x01", flag=1)
    assert call(http, GET_JWKS, compressed).grpc_status == UNIMPLEMENTED
    text = base64.b64encode(compressed)
    assert call(http, GET_JWKS, text, GRPC_WEB_TEXT).grpc_status == UNIMPLEMENTED
    gzip = http.post(
        GET_JWKS,
        content=frame(b"\x02/", flag=1),
        headers={"content-type": "application/grpc-web+proto", "grpc-encoding": "gzip"},
    )
    assert gzip.headers.get("grpc-status") == str(UNIMPLEMENTED)
    # Binary metadata that is not base64, native and grpc-web.
    bad_binary = [("x-trace-bin", "@@@@")]
    assert raw_call(edge.address, GET_JWKS, EMPTY_FRAME, bad_binary).grpc_status == INVALID_ARGUMENT
    web_binary = http.post(
        GET_JWKS,
        content=EMPTY_FRAME,
        headers={"content-type": "application/grpc-web+proto", **dict(bad_binary)},
    )
    assert web_binary.headers.get("grpc-status") == str(INVALID_ARGUMENT)
    good_binary = [("x-trace-bin", base64.b64encode(b"\x01\x02").decode().rstrip("="))]
    assert raw_call(edge.address, GET_JWKS, EMPTY_FRAME, good_binary).grpc_status == 0
    assert call(http, GET_JWKS, frame(b"", flag=0x40)).grpc_status == INVALID_ARGUMENT
    for content_type in ("application/grpc-web+json", "application/grpcfoo", "text/plain"):
        response = http.post(GET_JWKS, content=EMPTY_FRAME, headers={"content-type": content_type})
        assert response.status_code == 415, content_type
    get = http.get(GET_JWKS, headers={"content-type": "application/grpc-web+proto"})
    assert (get.status_code, get.headers.get("grpc-status")) == (200, str(INVALID_ARGUMENT))
    # Native gRPC with a codec the services do not speak, and GET: the same, not UNKNOWN.
    json_codec = raw_call(edge.address, GET_JWKS, EMPTY_FRAME, content_type="application/grpc+json")
    assert json_codec.grpc_status == INVALID_ARGUMENT, json_codec
    native_get = raw_call(edge.address, GET_JWKS, EMPTY_FRAME, method="GET")
    assert native_get.grpc_status == INVALID_ARGUMENT, native_get


def test_header_size_limits_do_not_echo_headers(edge: Edge, http: httpx.Client) -> None:
    with grpc.insecure_channel(edge.address) as channel:
        stub = user_service_pb2_grpc.UserServiceStub(channel)
        # An 8 KB token: past the token limit (refused as a token), not a header limit.
        with pytest.raises(grpc.RpcError) as long_token:
            stub.GetMe(
                user_service_pb2.GetMeRequest(),
                metadata=(("authorization", "Bearer " + "a" * 8192),),
                timeout=10,
            )
        assert long_token.value.code() is grpc.StatusCode.UNAUTHENTICATED
        # Headers under the edge's limit reach the server, whose limit is higher.
        stub.GetJwks(
            user_service_pb2.GetJwksRequest(), metadata=(("x-filler", "b" * 20_000),), timeout=10
        )
        # Past the edge's limit, native gRPC: the edge's HTTP/2 codec resets the stream.
        with pytest.raises(grpc.RpcError) as huge:
            stub.GetJwks(
                user_service_pb2.GetJwksRequest(),
                metadata=(("x-filler", "b" * 40_000),),
                timeout=10,
            )
    assert "x-filler" not in (huge.value.details() or "")
    # grpc-web (the app): a gRPC answer, naming no header.
    web = http.post(
        GET_JWKS,
        content=EMPTY_FRAME,
        headers={"content-type": "application/grpc-web+proto", "x-filler": "b" * 40_000},
    )
    assert web.headers.get("grpc-status") == str(RESOURCE_EXHAUSTED), web.headers
    assert "x-filler" not in web.headers.get("grpc-message", "")


def test_reflection_refuses_undecodable_bytes_without_a_traceback(
    backend: Process, edge: Edge
) -> None:
    lines_before = len(backend.logs.lines)
    undecodable = frame(b"\xff\xff\xff")
    for address in (backend.address, edge.address) * 10:
        reply = raw_call(address, REFLECTION, undecodable)
        assert reply.grpc_status == INVALID_ARGUMENT, reply
        assert "DecodeError" not in reply.grpc_message
    logged = "".join(backend.logs.lines[lines_before:])
    assert "Traceback" not in logged
    # Twenty refusals in one burst: one log line, not one per call.
    assert logged.count("undecodable requests refused") <= 1, logged
