"""Fuzz every method the server's reflection lists with malformed frames, headers and bytes
(issue "Hardening"), on four paths: native HTTP/2 straight to the server, native gRPC through
Envoy, grpc-web and grpc-web-text through Envoy. A call fails the test when it is answered
INTERNAL, UNKNOWN or UNAVAILABLE (a server error for a client mistake), with HTTP 5xx, without
any status, or not within a short deadline. Counts and time are bounded so it fits in CI.

What is not sent where, and why:
- Straight to the server, body mutations only, and never a compressed message: grpc core (C,
  before any Python runs) answers some malformed reserved and -bin headers, a compressed flag
  without grpc-encoding and a compressed message that does not decompress with INTERNAL
  itself, and grpc core is not ours to change.
- Native gRPC through Envoy, everything but the two compressed-message mutations: the edge
  streams native gRPC bodies through unbuffered (streams must stay live), so those frames
  reach grpc core exactly as they do straight to the server. Headers it does see first.
- grpc-web and grpc-web-text through Envoy, everything: the edge buffers and checks those
  bodies before anything goes upstream, so no client mistake there is grpc core's to answer.

Each run picks a seed (OPTIX_FUZZ_SEED replays one); every failure names it and the request.
"""

from __future__ import annotations

import base64
import collections
import concurrent.futures
import os
import random
import string
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import grpc
import h2.exceptions
import httpx
import pytest
from google.protobuf import descriptor_pool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from optix.user.v1 import user_service_pb2, user_service_pb2_grpc
from tests.e2e.accounts import PASSWORD, new_email
from tests.e2e.grpcweb import frame, send
from tests.e2e.stack import Edge, Process
from tests.support.rawgrpc import raw_call

SEED = int(os.environ.get("OPTIX_FUZZ_SEED") or random.SystemRandom().randrange(2**32))
CASES_PER_METHOD = 7
WORKERS = 12
# Every call carries this deadline; with the server's 2 s limit for a missing message, a call
# has no reason to last longer. The limit adds slack for a loaded 2-core machine.
GRPC_TIMEOUT = "2S"
HANG_LIMIT_S = 8.0
UNKNOWN, INTERNAL, UNAVAILABLE = 2, 13, 14
SERVER_ERRORS = {UNKNOWN: "UNKNOWN", INTERNAL: "INTERNAL", UNAVAILABLE: "UNAVAILABLE"}
NATIVE = "application/grpc"
GRPC_WEB = "application/grpc-web+proto"
GRPC_WEB_TEXT = "application/grpc-web-text"
ODD_CONTENT_TYPES = (
    "application/grpc+json",
    "application/grpcfoo",
    "application/grpc-web+json",
    "text/plain",
)
# Mutations some routes leave out (see the module docstring), by name.
COMPRESSED = "compressed flag, no grpc-encoding"
CORRUPT = "compressed message that does not decompress"
NOT_BASE64 = "invalid base64"
BAD_AUTHORIZATION = "garbage authorization"
PRINTABLE = string.ascii_letters + string.digits + string.punctuation
EXPECTED_METHODS = (
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    "/optix.user.v1.UserService/GetJwks",
    "/optix.marketdata.v1.MarketDataService/StreamQuotes",
    "/optix.watchlist.v1.WatchlistService/ListWatchlists",
    "/optix.brokerage.v1.BrokerageService/ListProviders",
    "/optix.alert.v1.AlertService/StreamAlertEvents",
)


@dataclass(frozen=True)
class Method:
    """One RPC as reflection describes it."""

    path: str
    client_streaming: bool
    server_streaming: bool


@dataclass(frozen=True)
class Case:
    """One fuzz request: its method, what was mutated, and the exact bytes and headers sent."""

    method: Method
    mutation: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = (("grpc-timeout", GRPC_TIMEOUT),)
    http_method: str = "POST"
    # None: the path's own content type.
    content_type: str | None = None
    # Sent with a valid access token, so the message gets past authentication to be decoded.
    signed_in: bool = False

    def is_grpc(self) -> bool:
        """Whether this is a gRPC request at all (the edge may refuse others with plain HTTP)."""
        return self.http_method == "POST" and self.content_type is None

    def describe(self) -> str:
        """Everything needed to send the same request again."""
        extra = f" {self.http_method}" if self.http_method != "POST" else ""
        extra += f" content-type={self.content_type!r}" if self.content_type else ""
        extra += " signed in" if self.signed_in else ""
        streams = (self.method.client_streaming, self.method.server_streaming)
        kind = {(False, True): "server-", (True, False): "client-", (True, True): "bidi-"}
        kind_text = f"{kind[streams]}streaming " if streams in kind else ""
        return (
            f"{kind_text}{self.method.path}{extra} [{self.mutation}] "
            f"headers={list(self.headers)} body={self.body!r}"
        )

    def wire_headers(self, token: str) -> tuple[tuple[str, str], ...]:
        """The headers to send: the case's own, and the access token if it is signed in."""
        if self.signed_in:
            return (*self.headers, ("authorization", f"Bearer {token}"))
        return self.headers


@dataclass(frozen=True)
class Outcome:
    """What came back, from either transport."""

    http_status: int | None
    grpc_status: int | None
    grpc_message: str = ""
    seconds: float = 0.0
    hung: bool = False
    reset: bool = False
    error: str = ""


@dataclass(frozen=True)
class Route:
    """One way into the server: the content type it speaks and the mutations sent on it."""

    name: str
    content_type: str
    body_mutations: tuple[str, ...]
    header_mutations: tuple[str, ...] = ()
    text: bool = False
    web: bool = False


# --- bodies ---------------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _protobuf(rng: random.Random, depth: int = 0) -> bytes:
    """Bytes that look like a protobuf message: random field numbers, mostly valid wire types,
    sometimes groups, invalid wire types, wrong lengths, nested messages and invalid UTF-8."""
    out = bytearray()
    for _ in range(rng.randint(1, 6)):
        number = rng.choice([rng.randint(1, 16), rng.randint(17, 2**29 - 1)])
        wire = rng.choices([0, 1, 2, 5, 3, 4, 6, 7], weights=[6, 2, 6, 2, 1, 1, 1, 1])[0]
        out += _varint(number << 3 | wire)
        if wire == 0:
            out += _varint(rng.getrandbits(rng.choice([1, 7, 32, 64])))
        elif wire == 1:
            out += rng.randbytes(8)
        elif wire == 5:
            out += rng.randbytes(4)
        elif wire == 2:
            if depth < 2 and rng.random() < 0.3:
                payload = _protobuf(rng, depth + 1)
            elif rng.random() < 0.5:
                payload = "".join(rng.choices(PRINTABLE, k=rng.randint(0, 24))).encode()
            else:
                payload = rng.randbytes(rng.randint(0, 24))
            # Now and then the length is a lie.
            length = len(payload) + rng.choice([0, 0, 0, 0, 1, 1000, -1])
            out += _varint(max(0, length)) + payload
    return bytes(out)


def _random_bytes(rng: random.Random) -> bytes:
    return frame(rng.randbytes(rng.randint(1, 64)))


def _truncated(rng: random.Random) -> bytes:
    data = rng.randbytes(rng.randint(0, 20))
    return struct.pack(">BI", 0, len(data) + rng.randint(1, 1000)) + data


def _huge_length(rng: random.Random) -> bytes:
    length = rng.choice([0xFFFFFFF0, 0xFFFFFFFF, 0x80000000, rng.randint(5 << 20, 2**32 - 1)])
    return struct.pack(">BI", 0, length) + rng.randbytes(rng.randint(0, 8))


def _partial_header(rng: random.Random) -> bytes:
    header = rng.randbytes(rng.randint(1, 4))
    return b"\x00" + header[1:] if rng.random() < 0.5 else header


def _trailing_garbage(rng: random.Random) -> bytes:
    return frame(b"") + rng.randbytes(rng.randint(1, 12))


def _compressed(rng: random.Random) -> bytes:
    return frame(rng.choice([b"", _protobuf(rng), rng.randbytes(8)]), flag=1)


def _bad_flag(rng: random.Random) -> bytes:
    return frame(rng.choice([b"", _protobuf(rng)]), flag=rng.randint(2, 255))


def _two_frames(rng: random.Random) -> bytes:
    return frame(b"") + frame(rng.choice([b"", _protobuf(rng)]))


def _empty_body(rng: random.Random) -> bytes:
    return b""


def _random_protobuf(rng: random.Random) -> bytes:
    return frame(_protobuf(rng))


def _empty_message(rng: random.Random) -> bytes:
    return frame(b"")


BODIES: dict[str, Callable[[random.Random], bytes]] = {
    "random bytes": _random_bytes,
    "truncated frame": _truncated,
    "huge length prefix": _huge_length,
    "partial frame header": _partial_header,
    "trailing garbage": _trailing_garbage,
    COMPRESSED: _compressed,
    "flag byte 2..255": _bad_flag,
    "two frames": _two_frames,
    "empty body": _empty_body,
    "random protobuf": _random_protobuf,
    "empty message": _empty_message,
}


def _not_base64(rng: random.Random) -> bytes:
    """grpc-web-text bodies that grpc-web's base64 decoding must refuse."""
    valid = base64.b64encode(frame(_protobuf(rng)))
    at = rng.randrange(len(valid))
    return rng.choice(
        [
            b"!!!!",
            b"AAAAA",  # not a whole group
            b"AA=AAAAA",  # padding inside
            b"AAAA AAA",
            b"-_-_",  # the URL-safe alphabet
            valid[:-1],
            valid[:at] + rng.choice([b"*", b"\n", b"-", b"\x00", b"\xff"]) + valid[at + 1 :],
            rng.randbytes(rng.randint(1, 32)),
        ]
    )


# --- headers --------------------------------------------------------------------------------


def _token(rng: random.Random, low: int = 1, high: int = 24) -> str:
    # No leading or trailing whitespace: the HTTP libraries refuse to send such values.
    return "".join(rng.choices(PRINTABLE, k=rng.randint(low, high)))


def _deadline(*extra: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    return (("grpc-timeout", GRPC_TIMEOUT), *extra)


def _bad_timeout(rng: random.Random, case: Case) -> Case:
    value = rng.choice(
        ["-1S", "-5m", "1x", "S", "abc", "123456789S", "", "1.5S", "0x10S", "2s", _token(rng)]
    )
    return replace(case, headers=(("grpc-timeout", value),))


def _duplicate_timeout(rng: random.Random, case: Case) -> Case:
    other = rng.choice(["1S", GRPC_TIMEOUT, "-1S", "1x", "999999999H"])
    return replace(case, headers=(("grpc-timeout", GRPC_TIMEOUT), ("grpc-timeout", other)))


def _bad_encoding(rng: random.Random, case: Case) -> Case:
    value = rng.choice(["no-such-codec", "gzip;;", ",,", "gzip, gzip", "x" * 300, _token(rng)])
    return replace(case, headers=_deadline(("grpc-encoding", value)))


def _corrupt_compressed(rng: random.Random, case: Case) -> Case:
    encoding = rng.choice(["gzip", "deflate"])
    return replace(
        case,
        headers=_deadline(("grpc-encoding", encoding)),
        body=frame(rng.randbytes(rng.randint(1, 32)), flag=1),
    )


def _bad_accept_encoding(rng: random.Random, case: Case) -> Case:
    value = rng.choice(["gzip;;", ",,,", "no-such-codec", "identity;q=x", _token(rng)])
    return replace(case, headers=_deadline(("grpc-accept-encoding", value)))


def _reserved_headers(rng: random.Random, case: Case) -> Case:
    number = rng.choice(["0", "2", "13", "-1", "abc", "99999999999", _token(rng, 1, 6)])
    picked = rng.sample(
        [
            ("grpc-status", number),
            ("grpc-message", rng.choice(["%zz%", "%", "boom", _token(rng)])),
            ("grpc-previous-rpc-attempts", rng.choice(["abc", "-1", "99999999999", number])),
        ],
        k=rng.randint(1, 3),
    )
    return replace(case, headers=_deadline(*picked))


def _bad_bin_header(rng: random.Random, case: Case) -> Case:
    value = rng.choice(["!!!", "a", "abc=d", "@@@@", "%%%%", "A===", _token(rng)])
    return replace(case, headers=_deadline((f"x-fuzz-{rng.randint(0, 999)}-bin", value)))


def _odd_content_type(rng: random.Random, case: Case) -> Case:
    return replace(case, content_type=rng.choice(ODD_CONTENT_TYPES))


def _get(rng: random.Random, case: Case) -> Case:
    return replace(case, http_method="GET")


def _bad_authorization(rng: random.Random, case: Case) -> Case:
    value = rng.choice(
        [
            "Bearer",
            "Bearer a.b.c",
            "Bearer " + _token(rng, 1, 200),
            "Basic Zm9vOmJhcg==",
            "bearer " + "x" * 5000,
            "Bearer eyJhbGciOiJub25lIn0.e30.",
            _token(rng),
        ]
    )
    return replace(case, headers=_deadline(("authorization", value)))


HEADERS: dict[str, Callable[[random.Random, Case], Case]] = {
    "malformed grpc-timeout": _bad_timeout,
    "duplicated grpc-timeout": _duplicate_timeout,
    "garbage grpc-encoding": _bad_encoding,
    CORRUPT: _corrupt_compressed,
    "garbage grpc-accept-encoding": _bad_accept_encoding,
    "reserved grpc-* request headers": _reserved_headers,
    "-bin header, invalid base64": _bad_bin_header,
    "odd content type": _odd_content_type,
    "GET instead of POST": _get,
    BAD_AUTHORIZATION: _bad_authorization,
}

ALL_BODIES = tuple(BODIES)
ALL_HEADERS = tuple(HEADERS)
# What reaches grpc core untouched on native HTTP/2 (see the module docstring).
NATIVE_BODIES = tuple(b for b in ALL_BODIES if b != COMPRESSED)
NATIVE_HEADERS = tuple(h for h in ALL_HEADERS if h != CORRUPT)
ROUTES = {
    "direct": Route("direct", NATIVE, NATIVE_BODIES),
    "edge-grpc": Route("edge-grpc", NATIVE, NATIVE_BODIES, NATIVE_HEADERS),
    "edge-grpc-web": Route("edge-grpc-web", GRPC_WEB, ALL_BODIES, ALL_HEADERS, web=True),
    "edge-grpc-web-text": Route(
        "edge-grpc-web-text",
        GRPC_WEB_TEXT,
        (*ALL_BODIES, NOT_BASE64),
        ALL_HEADERS,
        text=True,
        web=True,
    ),
}


def _cases(route: Route, methods: Sequence[Method], rng: random.Random) -> list[Case]:
    """CASES_PER_METHOD cases per method, the route's mutations dealt out in turn (in an order
    the seed shuffles) so each one reaches many methods and each method many mutations."""
    kinds = [*route.body_mutations, *route.header_mutations]
    rng.shuffle(kinds)
    cases = []
    for index, method in enumerate(methods):
        for offset in range(CASES_PER_METHOD):
            kind = kinds[(index * CASES_PER_METHOD + offset) % len(kinds)]
            if kind == NOT_BASE64:
                case = Case(method, kind, _not_base64(rng))
            elif kind in BODIES:
                case = Case(method, kind, BODIES[kind](rng))
            else:
                case = HEADERS[kind](rng, Case(method, kind, frame(b"")))
            if route.text and kind != NOT_BASE64:
                case = replace(case, body=base64.b64encode(case.body))
            # Half the calls signed in: the other half is mostly refused before decoding.
            if kind != BAD_AUTHORIZATION and rng.random() < 0.5:
                case = replace(case, signed_in=True)
            cases.append(case)
    return cases


# --- sending and judging --------------------------------------------------------------------


def _send_native(address: str, case: Case, token: str) -> Outcome:
    try:
        reply = raw_call(
            address,
            case.method.path,
            case.body,
            case.wire_headers(token),
            method=case.http_method,
            content_type=case.content_type or NATIVE,
            timeout=HANG_LIMIT_S,
        )
    except (OSError, h2.exceptions.ProtocolError) as error:
        return Outcome(None, None, reset=True, error=repr(error))
    return Outcome(
        reply.http_status,
        reply.grpc_status,
        reply.grpc_message,
        reply.seconds,
        hung=not reply.answered and not reply.reset and reply.seconds >= HANG_LIMIT_S,
        reset=reply.reset,
    )


def _send_web(client: httpx.Client, route: Route, case: Case, token: str) -> Outcome:
    headers = [
        ("content-type", case.content_type or route.content_type),
        ("x-grpc-web", "1"),
        # A fresh connection per call: no call inherits another's state, and no keep-alive
        # race can pass for a failure.
        ("connection", "close"),
        *case.wire_headers(token),
    ]
    started = time.monotonic()
    try:
        reply = send(
            client,
            case.method.path,
            case.body,
            headers,
            method=case.http_method,
            limit_s=HANG_LIMIT_S,
        )
    except httpx.TransportError as error:
        return Outcome(None, None, reset=True, error=repr(error))
    if reply is None:
        return Outcome(None, None, seconds=HANG_LIMIT_S, hung=True)
    seconds = time.monotonic() - started
    return Outcome(reply.http_status, reply.grpc_status, reply.grpc_message, seconds)


def _verdict(case: Case, outcome: Outcome) -> str | None:
    """Why this outcome is a failure, or None if it is an acceptable answer."""
    if outcome.hung:
        return f"no answer within {HANG_LIMIT_S} s"
    if outcome.grpc_status in SERVER_ERRORS:
        return f"answered {SERVER_ERRORS[outcome.grpc_status]} {outcome.grpc_message!r}"
    if outcome.http_status is not None and outcome.http_status >= 500:
        return f"HTTP {outcome.http_status}"
    if outcome.grpc_status is not None:
        return None
    if outcome.reset:
        return f"reset without a status {outcome.error}".rstrip()
    if case.is_grpc():
        return f"HTTP {outcome.http_status} without a grpc-status"
    # Not a gRPC request (odd content type, or GET): a plain HTTP refusal is a fine answer.
    if outcome.http_status is not None and 400 <= outcome.http_status < 500:
        return None
    return f"HTTP {outcome.http_status} without a grpc-status"


def _label(outcome: Outcome) -> str:
    if outcome.hung:
        return "hang"
    if outcome.grpc_status is not None:
        return f"grpc {outcome.grpc_status}"
    return "reset" if outcome.reset else f"http {outcome.http_status}"


def _ordinary_calls_fail(edge: Edge) -> list[str]:
    failures = []
    with grpc.insecure_channel(edge.address) as channel:
        stub = user_service_pb2_grpc.UserServiceStub(channel)
        for _ in range(3):
            try:
                stub.GetJwks(user_service_pb2.GetJwksRequest(), timeout=5)
            except grpc.RpcError as error:
                failures.append(f"GetJwks: {error.code()} {error.details()}")
    return failures


# --- the test -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def methods(backend: Process) -> list[Method]:
    """Every method of every service the server's reflection lists, health and reflection too."""
    with grpc.insecure_channel(backend.address) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        pool = descriptor_pool.DescriptorPool(database)
        found = [
            Method(f"/{service.full_name}/{m.name}", m.client_streaming, m.server_streaming)
            for name in sorted(database.get_services())
            for service in [pool.FindServiceByName(name)]
            for m in service.methods
        ]
    paths = {method.path for method in found}
    assert set(EXPECTED_METHODS) <= paths, sorted(paths)
    return found


@pytest.fixture(scope="module")
def token(backend: Process) -> str:
    """An access token of a fresh user. Only one: registrations per address are limited, and
    the suite shares the server (a fuzzed call that ended the session only costs coverage)."""
    with grpc.insecure_channel(backend.address) as channel:
        stub = user_service_pb2_grpc.UserServiceStub(channel)
        reply = stub.Register(
            user_service_pb2.RegisterRequest(email=new_email("fuzz"), password=PASSWORD),
            timeout=30,
        )
    return reply.tokens.access_token


@pytest.fixture
def web_client(edge: Edge) -> Iterator[httpx.Client]:
    """An HTTP/1.1 client for the edge, with room for every worker."""
    limits = httpx.Limits(max_connections=WORKERS, max_keepalive_connections=0)
    with httpx.Client(base_url=edge.url, limits=limits) as client:
        yield client


@pytest.mark.parametrize("route_name", list(ROUTES))
def test_malformed_requests_get_client_errors_promptly(
    route_name: str,
    methods: list[Method],
    backend: Process,
    edge: Edge,
    web_client: httpx.Client,
    token: str,
) -> None:
    route = ROUTES[route_name]
    # One generator per route from the one seed: a route's cases do not depend on the others.
    rng = random.Random(f"{SEED}:{route.name}")
    cases = _cases(route, methods, rng)
    address = backend.address if route.name == "direct" else edge.address
    lines_before = len(backend.logs.lines)

    def run(case: Case) -> Outcome:
        if route.web:
            return _send_web(web_client, route, case, token)
        return _send_native(address, case, token)

    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        outcomes = list(pool.map(run, cases))

    tally: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for case, outcome in zip(cases, outcomes, strict=True):
        tally[case.mutation][_label(outcome)] += 1
    print(f"fuzz via {route.name}: seed={SEED}, {len(cases)} calls")
    for mutation, labels in sorted(tally.items()):
        print(f"  {mutation}: {dict(sorted(labels.items()))}")
    failures: dict[str, list[str]] = collections.defaultdict(list)
    for case, outcome in zip(cases, outcomes, strict=True):
        if reason := _verdict(case, outcome):
            failures[case.mutation].append(f"{reason}: {case.describe()}")
    problems = [
        f"[{mutation}] {len(found)} of the calls, e.g.\n    " + "\n    ".join(found[:3])
        for mutation, found in sorted(failures.items())
    ]
    logged = "".join(backend.logs.lines[lines_before:])
    if "Traceback" in logged:
        problems.append(f"the server logged a traceback:\n{logged[-4000:]}")
    problems += [f"afterwards, an ordinary call failed: {f}" for f in _ordinary_calls_fail(edge)]
    if problems:
        pytest.fail(
            f"fuzzing {len(cases)} calls via {route.name} (replay with OPTIX_FUZZ_SEED={SEED}): "
            f"{sum(map(len, failures.values()))} failed\n" + "\n".join(problems),
            pytrace=False,
        )
