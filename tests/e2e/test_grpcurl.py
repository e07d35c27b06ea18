"""Operators' path: grpcurl lists, describes and calls, directly and through Envoy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from optix_client import OptixClient
from tests.e2e.accounts import PASSWORD, new_email
from tests.e2e.stack import Edge, Process

GRPCURL = str(Path(sys.executable).parent / "grpcurl")
SERVICES = {
    "optix.user.v1.UserService",
    "optix.marketdata.v1.MarketDataService",
    "optix.watchlist.v1.WatchlistService",
    "optix.brokerage.v1.BrokerageService",
    "optix.alert.v1.AlertService",
    "grpc.health.v1.Health",
}


@pytest.fixture(params=["direct", "envoy"])
def target(request: pytest.FixtureRequest, backend: Process, edge: Edge) -> str:
    """The server itself, or Envoy in front of it."""
    return backend.address if request.param == "direct" else edge.address


def grpcurl(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run grpcurl in plaintext mode."""
    return subprocess.run(
        [GRPCURL, "-plaintext", *args], capture_output=True, text=True, timeout=timeout
    )


def test_list_and_describe(target: str) -> None:
    listed = grpcurl(target, "list")
    assert listed.returncode == 0, listed.stderr
    assert set(listed.stdout.split()) >= SERVICES
    described = grpcurl(target, "describe", "optix.marketdata.v1.MarketDataService")
    assert described.returncode == 0, described.stderr
    assert "rpc StreamQuotes ( .optix.marketdata.v1.StreamQuotesRequest )" in described.stdout
    assert "returns ( stream .optix.marketdata.v1.StreamQuotesResponse )" in described.stdout


def test_unary_call(target: str) -> None:
    done = grpcurl("-d", "{}", target, "optix.user.v1.UserService/GetJwks")
    assert done.returncode == 0, done.stderr
    keys = json.loads(done.stdout)["keys"]
    assert keys and keys[0]["kty"] == "OKP" and keys[0]["crv"] == "Ed25519"
    health = grpcurl(
        "-d",
        '{"service": "optix.marketdata.v1.MarketDataService"}',
        target,
        "grpc.health.v1.Health/Check",
    )
    assert json.loads(health.stdout) == {"status": "SERVING"}


async def test_streaming_call(target: str) -> None:
    async with OptixClient(target) as client:
        await client.register(new_email("grpcurl"), PASSWORD)
        token = client.tokens.session.access_token
    assert token
    # The stream never ends by itself: -max-time ends it after the first messages arrived.
    done = grpcurl(
        "-H",
        f"authorization: Bearer {token}",
        "-max-time",
        "3",
        "-d",
        '{"symbols": ["AAPL"], "heartbeat_interval": "1s"}',
        target,
        "optix.marketdata.v1.MarketDataService/StreamQuotes",
    )
    assert '"symbol": "AAPL"' in done.stdout, done.stderr
    assert "DeadlineExceeded" in done.stderr


async def test_options_chain_as_json(target: str) -> None:
    # The chain is served as bytes encoded once per market update: grpcurl decodes them with
    # the reflected descriptors into the same JSON a message built field by field gives.
    async with OptixClient(target) as client:
        await client.register(new_email("grpcurl"), PASSWORD)
        token = client.tokens.session.access_token
    done = grpcurl(
        "-H",
        f"authorization: Bearer {token}",
        "-d",
        '{"underlying": "qqq", "strike_count": 2, "side": "CONTRACT_SIDE_CALLS"}',
        target,
        "optix.marketdata.v1.MarketDataService/GetOptionsChain",
    )
    assert done.returncode == 0, done.stderr
    chain = json.loads(done.stdout)["chain"]
    assert chain["underlying"] == "QQQ" and chain["options"]
    # grpcurl prints the proto field names.
    assert chain["pricing"]["pricing_time"] == chain["underlying_quote"]["quote_time"]
    assert {o["contract"]["right"] for o in chain["options"]} == {"OPTION_RIGHT_CALL"}
    # Prices as the decimals they are (44.85, not 44.849999999999994): on the tick, the mark a
    # midpoint of two ticks.
    prices = [o.get(f, 0.0) for o in chain["options"] for f in ("bid", "ask", "last", "mark")]
    assert all(len(repr(float(p)).partition(".")[2]) <= 4 for p in prices), prices
    empty = grpcurl(
        "-H",
        f"authorization: Bearer {token}",
        "-d",
        '{"underlying": "QQQ", "expiration_start": {"year": 2099, "month": 1, "day": 1}}',
        target,
        "optix.marketdata.v1.MarketDataService/GetOptionsChain",
    )
    assert empty.returncode == 0, empty.stderr
    assert "options" not in json.loads(empty.stdout)["chain"]


def test_unknown_method_is_unimplemented(target: str) -> None:
    done = grpcurl("-d", "{}", target, "grpc.health.v1.Health/NoSuchMethod")
    assert done.returncode != 0
    assert "does not include a method" in done.stderr or "Unimplemented" in done.stderr
