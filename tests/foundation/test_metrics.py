"""Prometheus metrics over a real server: scraped over HTTP from OPTIX_METRICS_PORT and parsed
as Prometheus reads them (RPCs by method and code, durations, calls and streams in flight, the
quote fan-out, feed ownership, the database pool, Redis errors)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from optix.marketdata.v1 import marketdata_service_pb2, marketdata_service_pb2_grpc
from optix.user.v1 import user_service_pb2, user_service_pb2_grpc
from optix_server.common.quote_topic import quote_channel
from optix_server.infra.cache import RedisCache
from optix_server.infra.db import Database
from optix_server.infra.env import SettingsError
from optix_server.infra.metrics import Metrics, MetricsServer
from optix_server.infra.pubsub import InMemoryPubSub, RedisPubSub
from optix_server.infra.settings import Settings
from optix_server.marketdata.convert import encode_quote
from optix_server.marketdata.models import DataSource, InstrumentType, Quote
from optix_server.marketdata.streaming import QuoteHub, QuoteSubscription
from tests.support.backends import fresh_database_url
from tests.support.server import RunningServer, make_settings, running_server

PASSWORD = "zebra-Quokka-7731-metrics"
USER = "/optix.user.v1.UserService"
STREAM = "/optix.marketdata.v1.MarketDataService/StreamQuotes"
WAIT_S = 30

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
async def metered(tmp_path: Path) -> AsyncIterator[RunningServer]:
    """Every service on a real server with metrics on a free port and quick simulated ticks."""
    async with (
        fresh_database_url("sqlite", tmp_path) as url,
        running_server(
            make_settings(url, tmp_path, metrics_port=0, env={"OPTIX_MARKETDATA_TICK_RATE": "20"})
        ) as running,
    ):
        yield running


async def scrape(port: int | None) -> Samples:
    """GET /metrics over HTTP and parse it as Prometheus would: (name, labels) -> value."""
    assert port
    async with httpx.AsyncClient() as http:
        response = await http.get(f"http://127.0.0.1:{port}/metrics", timeout=WAIT_S)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """One sample's value; None when the series is not there."""
    return samples.get((name, frozenset(labels.items())))


async def test_rpcs_streams_feed_and_pool_are_scraped(metered: RunningServer) -> None:
    port = metered.server.metrics_port
    async with metered.channel() as channel:
        users = user_service_pb2_grpc.UserServiceStub(channel)
        registered = await users.Register(
            user_service_pb2.RegisterRequest(email="metrics@example.com", password=PASSWORD)
        )
        auth = (("authorization", f"Bearer {registered.tokens.access_token}"),)
        await users.GetMe(user_service_pb2.GetMeRequest(), metadata=auth)
        with pytest.raises(grpc.aio.AioRpcError) as anonymous:
            await users.GetMe(user_service_pb2.GetMeRequest())
        assert anonymous.value.code() is grpc.StatusCode.UNAUTHENTICATED

        # A unary call's metrics are recorded before its answer leaves the server.
        samples = await scrape(port)
        handled = "optix_rpc_handled_total"
        assert value(samples, handled, method=f"{USER}/Register", code="OK") == 1
        assert value(samples, handled, method=f"{USER}/GetMe", code="OK") == 1
        assert value(samples, handled, method=f"{USER}/GetMe", code="UNAUTHENTICATED") == 1
        assert value(samples, handled, method=f"{USER}/Register", code="UNAUTHENTICATED") is None
        duration = "optix_rpc_duration_seconds"
        assert value(samples, f"{duration}_count", method=f"{USER}/GetMe") == 2
        assert value(samples, f"{duration}_count", method=f"{USER}/Register") == 1
        assert value(samples, f"{duration}_bucket", method=f"{USER}/GetMe", le="+Inf") == 2
        assert (value(samples, f"{duration}_sum", method=f"{USER}/GetMe") or 0) > 0
        assert value(samples, "optix_rpc_in_flight") == 0
        # Unary methods get no open-streams series.
        assert value(samples, "optix_rpc_open_streams", method=f"{USER}/GetMe") is None
        assert value(samples, "optix_marketdata_feed_owner") == 1
        # SQLAlchemy's default pool for the SQLite file; what background work holds varies.
        assert value(samples, "optix_db_pool_size", pool="main") == 5
        assert value(samples, "optix_db_pool_checked_out", pool="main") is not None

        quotes = marketdata_service_pb2_grpc.MarketDataServiceStub(channel)
        stream = quotes.StreamQuotes(
            marketdata_service_pb2.StreamQuotesRequest(symbols=["AAPL"]), metadata=auth
        )
        async with asyncio.timeout(WAIT_S):
            # The first batch may be the snapshot a stream starts with; the second is a tick
            # handed out by the hub, whose lag it has observed before sending it.
            batches = 0
            while batches < 2:
                message = await stream.read()
                assert isinstance(message, marketdata_service_pb2.StreamQuotesResponse)
                batches += 1 if message.HasField("quotes") else 0
        samples = await scrape(port)
        assert value(samples, "optix_rpc_open_streams", method=STREAM) == 1
        assert value(samples, "optix_rpc_in_flight") == 1
        assert (value(samples, "optix_quote_fanout_lag_seconds_count") or 0) > 0
        assert value(samples, "optix_quote_conflations_total") is not None

        # Ending the session ends its stream on the server: recorded before the status is sent.
        await users.Logout(
            user_service_pb2.LogoutRequest(refresh_token=registered.tokens.refresh_token),
            metadata=auth,
        )
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            async with asyncio.timeout(WAIT_S):
                while True:
                    await stream.read()
        assert ended.value.code() is grpc.StatusCode.UNAUTHENTICATED
        samples = await scrape(port)
        assert value(samples, "optix_rpc_open_streams", method=STREAM) == 0
        assert value(samples, "optix_rpc_in_flight") == 0
        assert value(samples, handled, method=STREAM, code="UNAUTHENTICATED") == 1
        assert value(samples, f"{duration}_count", method=STREAM) == 1


async def test_endpoint_answers_only_metrics_and_frees_its_port(tmp_path: Path) -> None:
    async with (
        fresh_database_url("sqlite", tmp_path) as url,
        running_server(make_settings(url, tmp_path, services=["user"], metrics_port=0)) as run,
    ):
        port = run.server.metrics_port
        assert port
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/")).status_code == 404
            assert (await http.post("/metrics")).status_code == 405
            head = await http.head("/metrics")
            assert head.status_code == 200 and head.content == b""
            open_metrics = await http.get(
                "/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"}
            )
            assert open_metrics.headers["content-type"].startswith("application/openmetrics-text")
            assert open_metrics.text.rstrip().endswith("# EOF")
    # Stopped with the server: nothing listens there any more.
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as http:
            await http.get(f"http://127.0.0.1:{port}/metrics")


async def test_metrics_are_off_without_a_port(tmp_path: Path) -> None:
    async with (
        fresh_database_url("sqlite", tmp_path) as url,
        running_server(make_settings(url, tmp_path, services=["user"])) as run,
    ):
        assert run.server.metrics_port is None
        async with run.channel() as channel:
            users = user_service_pb2_grpc.UserServiceStub(channel)
            await users.GetJwks(user_service_pb2.GetJwksRequest())
        # Off means the interceptor is not installed: no call is counted.
        text = run.deps.metrics.exposition()[0].decode()
        assert "GetJwks" not in text


async def test_a_taken_port_fails_to_start() -> None:
    metrics = Metrics()
    first = MetricsServer(metrics, "127.0.0.1", 0)
    port = await first.start()
    try:
        with pytest.raises(OSError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
            await MetricsServer(metrics, "127.0.0.1", port).start()
    finally:
        await first.stop()


def test_metrics_port_setting() -> None:
    assert Settings.from_env({}).metrics_port is None
    settings = Settings.from_env({"OPTIX_METRICS_PORT": "9464", "OPTIX_HOST": "0.0.0.0"})
    assert (settings.metrics_port, settings.metrics_bind_host) == (9464, "0.0.0.0")
    settings = Settings.from_env({"OPTIX_METRICS_PORT": "0", "OPTIX_METRICS_HOST": "127.0.0.2"})
    assert (settings.metrics_port, settings.metrics_bind_host) == (0, "127.0.0.2")
    for bad in ("-1", "65536", "http"):
        with pytest.raises(SettingsError, match="OPTIX_METRICS_PORT"):
            Settings.from_env({"OPTIX_METRICS_PORT": bad})


def _quote(symbol: str, sequence: int) -> bytes:
    return encode_quote(
        Quote(
            symbol=symbol,
            instrument_type=InstrumentType.EQUITY,
            bid=99.99,
            ask=100.01,
            last=100.0,
            bid_size=1,
            ask_size=1,
            volume=sequence,
            open=100.0,
            high=100.0,
            low=100.0,
            previous_close=99.0,
            quote_time=datetime.now(UTC),
            source=DataSource.SIMULATED,
            sequence=sequence,
        )
    )


async def _no_snapshot(symbols: Sequence[str]) -> dict[str, bytes]:
    return {}


def _registry_samples(metrics: Metrics) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(metrics.exposition()[0].decode())
        for sample in family.samples
    }


async def test_hub_observes_lag_per_flush_and_counts_conflations() -> None:
    metrics = Metrics()
    pubsub = InMemoryPubSub()
    hub = QuoteHub(
        pubsub, _no_snapshot, asyncio.Event(), observe_lag=metrics.quote_fanout_lag.observe
    )
    metrics.count_conflations(lambda: hub.conflated)
    got: asyncio.Queue[int] = asyncio.Queue()

    async def read(sub: QuoteSubscription) -> None:
        while True:
            for tick in await sub.next_batch():
                got.put_nowait(tick.sequence)

    async with hub.subscribe(["AAPL"]) as reading, hub.subscribe(["AAPL"]) as stalled:
        reader = asyncio.create_task(read(reading))
        for sequence in (1, 2, 3):
            await pubsub.publish(quote_channel("AAPL"), _quote("AAPL", sequence))
            assert await asyncio.wait_for(got.get(), WAIT_S) == sequence
        reader.cancel()
        # The stalled stream kept only tick 3: ticks 1 and 2 were superseded unsent.
        assert stalled.conflated == 2
        samples = _registry_samples(metrics)
        assert value(samples, "optix_quote_conflations_total") == 2
        # One observation per flush, whatever the number of streams.
        assert value(samples, "optix_quote_fanout_lag_seconds_count") == 3
        assert (value(samples, "optix_quote_fanout_lag_seconds_sum") or 0) >= 0
    # Streams that ended keep counting in the total.
    assert value(_registry_samples(metrics), "optix_quote_conflations_total") == 2
    await hub.stop()


async def test_pool_use_is_read_at_scrape_time(tmp_path: Path) -> None:
    metrics = Metrics()
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'pool.db'}")
    metrics.watch_database(database)
    checked_out = "optix_db_pool_checked_out"
    try:
        assert value(_registry_samples(metrics), checked_out, pool="main") == 0
        async with database.engine.connect(), database.engine.connect():
            assert value(_registry_samples(metrics), checked_out, pool="main") == 2
        assert value(_registry_samples(metrics), checked_out, pool="main") == 0
        assert value(_registry_samples(metrics), "optix_db_pool_size", pool="main") == 5
    finally:
        await database.dispose()


async def test_failed_redis_operations_are_counted() -> None:
    metrics = Metrics()
    # Nothing listens on port 1: every operation fails to connect.
    cache = RedisCache(
        Redis.from_url("redis://127.0.0.1:1/0"), on_error=metrics.redis_errors_of("cache")
    )
    pubsub = RedisPubSub(
        Redis.from_url("redis://127.0.0.1:1/0"), on_error=metrics.redis_errors_of("pubsub")
    )
    try:
        for attempt in (cache.get("k"), cache.incr("n", 1.0), pubsub.publish("c", b"x")):
            with pytest.raises(Exception):  # noqa: B017 - whatever redis-py raises
                await attempt
    finally:
        await cache.close()
        await pubsub.close()
    samples = _registry_samples(metrics)
    errors = "optix_redis_errors_total"
    assert value(samples, errors, client="cache", operation="get") == 1
    assert value(samples, errors, client="cache", operation="incr") == 1
    assert value(samples, errors, client="pubsub", operation="publish") == 1
