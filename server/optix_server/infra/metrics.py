"""Prometheus metrics of one process: what is recorded (a `Metrics` per server, in its own
registry), the server interceptor timing and counting every RPC, and the HTTP endpoint that
serves them on OPTIX_METRICS_PORT."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING, Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from optix_server.infra.handlers import (
    Behaviour,
    Handler,
    HandlerInterceptor,
    method_of,
    rewrap_handler,
    status_after,
)
from optix_server.infra.logging import get_logger

if TYPE_CHECKING:
    from optix_server.infra.db import Database

log = get_logger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]

# Seconds. A unary call takes a millisecond or so; a stream's duration is its whole life.
RPC_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0)
# Seconds from a quote's quote_time to the hub handing it to the streams.
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A scrape's request head must arrive within this long, and be at most this big.
REQUEST_TIMEOUT_SECONDS = 10.0
MAX_REQUEST_HEAD_BYTES = 16 * 1024
METRICS_PATH = "/metrics"
_TEXT = {"Content-Type": "text/plain; charset=utf-8"}


class Metrics:
    """Every metric a server records, in a registry of its own (never the process-wide default:
    a test process runs many servers); slices record through the attributes or hand over
    something to read at scrape time."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.rpcs = Counter(
            "optix_rpc_handled",
            "RPCs ended, by full method and gRPC status code.",
            ("method", "code"),
            registry=registry,
        )
        self.rpc_duration = Histogram(
            "optix_rpc_duration_seconds",
            "How long RPCs took, by full method (a stream: from its start to its end).",
            ("method",),
            buckets=RPC_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "optix_rpc_in_flight", "RPCs being handled (streams included).", registry=registry
        )
        # Counted in a plain int and read at scrape time: a Gauge's inc and dec (a lock each)
        # cost more than the rest of the per-call bookkeeping together.
        self.calls_in_flight = InFlight()
        self.in_flight.set_function(self.calls_in_flight.value)
        self.open_streams = Gauge(
            "optix_rpc_open_streams",
            "Server-streaming RPCs open, by full method.",
            ("method",),
            registry=registry,
        )
        self.quote_fanout_lag = Histogram(
            "optix_quote_fanout_lag_seconds",
            "From a quote's quote_time to the stream hub handing it to the streams (one "
            "observation per delivery batch: its oldest quote).",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.feed_owner = Gauge(
            "optix_marketdata_feed_owner",
            "1 while this replica runs the market data feed, else 0.",
            registry=registry,
        )
        self.redis_errors = Counter(
            "optix_redis_errors",
            "Failed Redis operations, by client (cache, pubsub) and operation.",
            ("client", "operation"),
            registry=registry,
        )
        self._conflation_sources: list[Callable[[], int]] = []
        self._databases: list[Database] = []
        registry.register(_ReadAtScrape(self._conflation_sources, self._databases))

    def count_conflations(self, source: Callable[[], int]) -> None:
        """Add `source` (a running total of superseded ticks) to optix_quote_conflations_total,
        read at scrape time so the fan-out path only bumps an int."""
        self._conflation_sources.append(source)

    def watch_database(self, database: Database) -> None:
        """Report `database`'s connection pool (checked out, size) at scrape time."""
        self._databases.append(database)

    def redis_errors_of(self, client: str) -> Callable[[str], None]:
        """A callback counting one failed operation (its argument) of the Redis `client`."""
        counter = self.redis_errors

        def failed(operation: str) -> None:
            counter.labels(client, operation).inc()

        return failed

    def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """The registry in the format `accept` asks for (Prometheus text by default), and its
        content type."""
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type


class InFlight:
    """A count of calls in progress (only touched on the event loop)."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def value(self) -> float:
        """The count now."""
        return float(self.count)


class _ReadAtScrape(Collector):
    """The metrics whose values live elsewhere and are read when scraped."""

    def __init__(
        self, conflation_sources: list[Callable[[], int]], databases: list[Database]
    ) -> None:
        self._conflation_sources = conflation_sources
        self._databases = databases

    def collect(self) -> Iterable[Metric]:
        """Conflations so far and each database pool's use, as they are now."""
        yield CounterMetricFamily(
            "optix_quote_conflations",
            "Quote ticks superseded by a newer one before a slow stream sent them.",
            value=sum(source() for source in self._conflation_sources),
        )
        checked_out = GaugeMetricFamily(
            "optix_db_pool_checked_out",
            "Database connections in use, by pool.",
            labels=("pool",),
        )
        size = GaugeMetricFamily(
            "optix_db_pool_size",
            "Connections the database pool keeps (more may overflow), by pool.",
            labels=("pool",),
        )
        for index, database in enumerate(self._databases):
            # Read on every scrape: disposing the engine replaces its pool.
            pool: Any = database.engine.pool
            name = "main" if index == 0 else f"main{index}"
            # Pools that keep no count (SQLAlchemy's NullPool, StaticPool) report nothing.
            if hasattr(pool, "checkedout") and hasattr(pool, "size"):
                checked_out.add_metric((name,), float(pool.checkedout()))
                size.add_metric((name,), float(pool.size()))
        yield checked_out
        yield size


class _MethodMetrics:
    """One method's label children, bound once (no label lookup or formatting per call)."""

    __slots__ = ("_codes", "_method", "_metrics", "_streams", "duration", "in_flight")

    def __init__(self, metrics: Metrics, method: str) -> None:
        self._metrics = metrics
        self._method = method
        self._codes: dict[grpc.StatusCode, Counter] = {}
        self._streams: Gauge | None = None
        self.duration = metrics.rpc_duration.labels(method)
        self.in_flight = metrics.calls_in_flight

    def streams(self) -> Gauge:
        """The open-streams child, made on the first stream (unary methods get no series)."""
        streams = self._streams
        if streams is None:
            streams = self._streams = self._metrics.open_streams.labels(self._method)
        return streams

    def ended(self, code: grpc.StatusCode, seconds: float) -> None:
        """Count one ended call and observe its duration."""
        self.duration.observe(seconds)
        child = self._codes.get(code)
        if child is None:
            child = self._codes[code] = self._metrics.rpcs.labels(self._method, code.name)
        child.inc()


class MetricsInterceptor(HandlerInterceptor):
    """Counts every call by method and status, times it, and tracks the calls and streams in
    flight (inside the access log, outside error mapping: it sees the final status)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._methods: dict[str, _MethodMetrics] = {}

    async def wrap(self, handler: Handler, details: grpc.HandlerCallDetails) -> Handler:
        """Wrap the handler's behaviour so its start and end are recorded."""
        method = method_of(details)
        bound = self._methods.get(method)
        if bound is None:
            # Only methods a handler exists for get here: the label set stays bounded.
            bound = self._methods[method] = _MethodMetrics(self._metrics, method)
        return rewrap_handler(
            handler,
            lambda behaviour, streaming: _measured(
                bound, bound.streams() if streaming else None, behaviour
            ),
        )


def _measured(bound: _MethodMetrics, streams: Gauge | None, behaviour: Behaviour) -> Behaviour:
    clock = time.perf_counter
    in_flight = bound.in_flight
    if inspect.isasyncgenfunction(behaviour):
        assert streams is not None  # only a streaming response is a generator

        async def generator(request: Any, context: Context) -> AsyncIterator[Any]:
            started = clock()
            in_flight.count += 1
            streams.inc()
            failure: BaseException | None = None
            try:
                async for item in behaviour(request, context):
                    yield item
            except BaseException as exc:
                failure = exc
                raise
            finally:
                in_flight.count -= 1
                streams.dec()
                bound.ended(status_after(context, failure), clock() - started)

        return generator

    # A coroutine, also for a stream that writes its messages (see the StreamQuotes servicer).
    async def call(request: Any, context: Context) -> Any:
        started = clock()
        in_flight.count += 1
        if streams is not None:
            streams.inc()
        failure: BaseException | None = None
        try:
            result = behaviour(request, context)
            if inspect.isawaitable(result):
                result = await result
            return result
        except BaseException as exc:
            failure = exc
            raise
        finally:
            in_flight.count -= 1
            if streams is not None:
                streams.dec()
            bound.ended(status_after(context, failure), clock() - started)

    return call


class MetricsServer:
    """The Prometheus scrape endpoint (GET /metrics over HTTP/1.1), served on the event loop
    (so collectors read the services' state without locks); stop() frees the port."""

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        self._metrics = metrics
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> int:
        """Bind and serve; returns the bound port (a free one when asked for 0)."""
        try:
            self._server = await asyncio.start_server(
                self._serve, self._host, self._port, limit=MAX_REQUEST_HEAD_BYTES
            )
        except OSError as exc:
            raise OSError(
                f"cannot serve metrics on {self._host}:{self._port}: {exc.strerror or exc}"
            ) from exc
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("serving metrics", address=f"{self._host}:{self.port}", path=METRICS_PATH)
        return self.port

    async def stop(self) -> None:
        """Stop listening and end the scrapes in progress."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
                head = await _read_head(reader)
                status, headers, body = self._answer(head)
                writer.write(_response(status, headers, body, send_body=head.method != "HEAD"))
                await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass  # a scraper that went away or sent garbage: nothing to answer
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _answer(self, head: _RequestHead) -> tuple[str, dict[str, str], bytes]:
        if head.method not in ("GET", "HEAD"):
            return "405 Method Not Allowed", {**_TEXT, "Allow": "GET, HEAD"}, b"use GET\n"
        if head.path.split("?", 1)[0] != METRICS_PATH:
            return "404 Not Found", _TEXT, f"metrics are at {METRICS_PATH}\n".encode()
        body, content_type = self._metrics.exposition(head.headers.get("accept", ""))
        return "200 OK", {"Content-Type": content_type}, body


class _RequestHead:
    """An HTTP request line and headers (names lower-cased)."""

    __slots__ = ("headers", "method", "path")

    def __init__(self, method: str, path: str, headers: dict[str, str]) -> None:
        self.method = method
        self.path = path
        self.headers = headers


async def _read_head(reader: asyncio.StreamReader) -> _RequestHead:
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        raise ValueError("request head too large") from None
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise ValueError("not an HTTP request line")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return _RequestHead(parts[0], parts[1], headers)


def _response(status: str, headers: dict[str, str], body: bytes, *, send_body: bool) -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close"]
    head.extend(f"{name}: {value}" for name, value in headers.items())
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + (body if send_body else b"")
