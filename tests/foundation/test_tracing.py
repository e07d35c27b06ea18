"""W3C trace context over a real server: a call's `traceparent` puts its access log line in
the caller's trace, under a span of its own, and the service-to-service calls it makes carry
that trace on with the call's span as their parent."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from optix.user.v1 import user_service_pb2, user_service_pb2_grpc
from optix.watchlist.v1 import watchlist_pb2, watchlist_service_pb2, watchlist_service_pb2_grpc
from optix_server.infra.access_log import AccessLog
from optix_server.infra.tracing import parse_traceparent, trace_from_metadata
from tests.support.backends import fresh_database_url
from tests.support.server import RunningServer, make_settings, running_server

PASSWORD = "zebra-Quokka-7731-tracing"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
CREATE = "/optix.watchlist.v1.WatchlistService/CreateWatchlist"
BATCH_QUOTES = "/optix.marketdata.v1.MarketDataService/BatchGetQuotes"
GET_JWKS = "/optix.user.v1.UserService/GetJwks"
HEX16 = re.compile(r"[0-9a-f]{16}")
HEX32 = re.compile(r"[0-9a-f]{32}")


class Lines:
    """An access-log logger keeping each line's fields."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def info(self, event: str, **fields: Any) -> None:
        self.events.append({"event": event, **fields})

    def of(self, method: str) -> list[dict[str, Any]]:
        """The lines of calls to `method`, in the order they ended."""
        return [line for line in self.events if line.get("method") == method]


@pytest.fixture
async def traced(tmp_path: Path) -> AsyncIterator[tuple[RunningServer, Lines]]:
    """Every service on a real server whose access log (every call) is kept in memory."""
    lines = Lines()
    async with (
        fresh_database_url("sqlite", tmp_path) as url,
        running_server(
            make_settings(url, tmp_path),
            access_log=AccessLog("all", logger=lines),  # type: ignore[arg-type]
        ) as running,
    ):
        yield running, lines


async def _register(channel: grpc.aio.Channel) -> tuple[tuple[str, str], ...]:
    users = user_service_pb2_grpc.UserServiceStub(channel)
    registered = await users.Register(
        user_service_pb2.RegisterRequest(email="trace@example.com", password=PASSWORD)
    )
    return (("authorization", f"Bearer {registered.tokens.access_token}"),)


async def test_a_traceparent_is_logged_and_carried_to_internal_calls(
    traced: tuple[RunningServer, Lines],
) -> None:
    server, lines = traced
    async with server.channel() as channel:
        auth = await _register(channel)
        watchlists = watchlist_service_pb2_grpc.WatchlistServiceStub(channel)
        # Creating a list with symbols asks market data (a service-to-service call) whether
        # they exist; every line is written before the answer is sent.
        await watchlists.CreateWatchlist(
            watchlist_service_pb2.CreateWatchlistRequest(
                parent="users/me",
                watchlist=watchlist_pb2.Watchlist(
                    display_name="Traced", items=[watchlist_pb2.WatchlistItem(symbol="AAPL")]
                ),
            ),
            metadata=(*auth, ("traceparent", TRACEPARENT)),
        )
    (create,) = lines.of(CREATE)
    assert create["status"] == "OK"
    assert create["trace_id"] == TRACE_ID
    assert create["parent_span_id"] == PARENT_ID
    assert HEX16.fullmatch(create["span_id"]) and create["span_id"] != PARENT_ID
    (internal,) = lines.of(BATCH_QUOTES)
    assert internal["service"] == "watchlist"
    assert internal["trace_id"] == TRACE_ID
    # The internal call's parent is the call it was made for, and it has a span of its own.
    assert internal["parent_span_id"] == create["span_id"]
    assert HEX16.fullmatch(internal["span_id"])
    assert internal["span_id"] not in (create["span_id"], PARENT_ID)


@pytest.mark.parametrize(
    "header",
    [
        f"01-{TRACE_ID}-{PARENT_ID}-01",  # another version
        f"00-{TRACE_ID.upper()}-{PARENT_ID}-01",  # upper-case hex
        f"00-{'0' * 32}-{PARENT_ID}-01",  # all-zero trace id
        f"00-{TRACE_ID}-{'0' * 16}-01",  # all-zero parent id
        f"00-{TRACE_ID}-{PARENT_ID}-01-extra",
        f"00-{TRACE_ID[:-1]}-{PARENT_ID}-01",
        f"00-{TRACE_ID}-{PARENT_ID}-1",
        f"00_{TRACE_ID}_{PARENT_ID}_01",
        "",
    ],
)
async def test_a_malformed_traceparent_starts_a_new_trace(
    traced: tuple[RunningServer, Lines], header: str
) -> None:
    server, lines = traced
    async with server.channel() as channel:
        users = user_service_pb2_grpc.UserServiceStub(channel)
        await users.GetJwks(user_service_pb2.GetJwksRequest(), metadata=(("traceparent", header),))
    (line,) = lines.of(GET_JWKS)
    assert HEX32.fullmatch(line["trace_id"]) and line["trace_id"] != TRACE_ID
    assert HEX16.fullmatch(line["span_id"])
    assert "parent_span_id" not in line


async def test_each_call_without_a_traceparent_gets_its_own_trace(
    traced: tuple[RunningServer, Lines],
) -> None:
    server, lines = traced
    async with server.channel() as channel:
        users = user_service_pb2_grpc.UserServiceStub(channel)
        await users.GetJwks(user_service_pb2.GetJwksRequest())
        await users.GetJwks(
            user_service_pb2.GetJwksRequest(), metadata=(("traceparent", TRACEPARENT),)
        )
        await users.GetJwks(user_service_pb2.GetJwksRequest())
    first, second, third = lines.of(GET_JWKS)
    # No trace leaks from one call into the next on the same connection.
    assert second["trace_id"] == TRACE_ID
    assert len({first["trace_id"], second["trace_id"], third["trace_id"]}) == 3
    assert "parent_span_id" not in first and "parent_span_id" not in third


async def test_an_internal_call_outside_any_call_carries_no_trace(
    traced: tuple[RunningServer, Lines],
) -> None:
    server, lines = traced
    # Like a background task's call: the callee starts a trace of its own.
    stub = server.deps.clients.stub("user", user_service_pb2_grpc.UserServiceStub, caller="alert")
    await stub.GetJwks(user_service_pb2.GetJwksRequest())
    (line,) = lines.of(GET_JWKS)
    assert line["service"] == "alert"
    assert HEX32.fullmatch(line["trace_id"])
    assert "parent_span_id" not in line


def test_traceparent_parsing() -> None:
    assert parse_traceparent(TRACEPARENT) == (TRACE_ID, PARENT_ID, "01")
    assert parse_traceparent(f"00-{TRACE_ID}-{PARENT_ID}-00") == (TRACE_ID, PARENT_ID, "00")
    assert parse_traceparent(b"00-" + TRACE_ID.encode()) is None
    assert parse_traceparent(None) is None
    # Two traceparent headers are ambiguous: ignored, like a malformed one.
    twice = trace_from_metadata([("traceparent", TRACEPARENT), ("traceparent", TRACEPARENT)])
    assert twice.trace_id != TRACE_ID and twice.parent_id is None
    kept = trace_from_metadata([("x-other", "1"), ("traceparent", TRACEPARENT)])
    assert (kept.trace_id, kept.parent_id, kept.flags) == (TRACE_ID, PARENT_ID, "01")
    assert kept.traceparent() == f"00-{TRACE_ID}-{kept.span_id}-01"
