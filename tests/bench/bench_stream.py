"""Quote stream fan-out: tick-to-client latency and delivery with 1,000 concurrent StreamQuotes
clients on 10 symbols at 10 ticks/s each, against a single client and against a bare grpc.aio
server doing the same fan-out (the transport's floor), measured in the same run in alternating
rounds.

The server (simulated provider, in-process pub/sub) runs in its own process and records every
tick it publishes. The clients run in one Node process (grpc-js, clients/web/src/node/fanout.ts)
that timestamps raw messages and decodes nothing, so the load generator costs far less per
message than the server it measures; this process decodes its log afterwards. Latency is
client receive time minus the quote's tick time (the scheduled time of the tick). Delivery
counts, per client and symbol, the published ticks the client received itself, and those it
received or got a newer (conflated) quote for.

A last round measures the cross-replica path: a replica that owns no feed serves the 1,000
clients from ticks that another process (the feed owner) publishes through Redis."""

from __future__ import annotations

import asyncio
import cProfile
import dataclasses
import json
import os
import shutil
import statistics
import struct
import subprocess
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from optix.marketdata.v1 import marketdata_service_pb2 as pb
from optix_server.infra.gc_policy import apply_gc_policy
from optix_server.infra.settings import Settings
from optix_server.marketdata.config import DEFAULT_UNIVERSE
from tests.bench.spawned import spawned_server

CLIENTS = 1000
CHANNELS = 10
TICK_RATE = 10.0
WARMUP_S = 2.0
MEASURE_S = 8.0
GRACE_S = 1.0
ROUNDS = 3
SYMBOLS = [i.symbol for i in DEFAULT_UNIVERSE]
# The Redis of the cross-replica round (the machine's; a unique key prefix per run).
REDIS_URL = os.environ.get("OPTIX_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

Published = dict[str, list[int]]


def _server_process(settings: Settings, conn: Connection) -> None:
    """The OPTIX server (marketdata only), answering measurement windows over `conn`."""
    profile_to = os.environ.get("OPTIX_BENCH_PROFILE")
    if not profile_to:
        asyncio.run(_serve(settings, conn))
        return
    # Where the server's time goes: OPTIX_BENCH_PROFILE=/tmp/server.prof make bench
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        asyncio.run(_serve(settings, conn))
    finally:
        profiler.disable()
        profiler.dump_stats(profile_to)


async def _answer_windows(conn: Connection, published: dict[str, list[tuple[int, float]]]) -> None:
    """Until "stop": for each (start, end) window the client sends, reply with the ticks
    published in it and the CPU seconds this process used in it (all threads: the asyncio loop
    and grpc's poller), a steadier measure of the serving cost than latency on a busy machine."""
    cpu: list[tuple[float, float]] = []

    async def sample_cpu() -> None:
        while True:
            cpu.append((time.time(), time.process_time()))
            await asyncio.sleep(0.1)

    sampler = asyncio.create_task(sample_cpu())
    loop = asyncio.get_running_loop()
    while True:
        command = await loop.run_in_executor(None, conn.recv)
        if command == "stop":
            break
        start, end = command
        used = [c for at, c in cpu if start <= at <= end]
        conn.send(
            (
                {s: [seq for seq, at in v if start <= at <= end] for s, v in published.items()},
                used[-1] - used[0] if len(used) > 1 else 0.0,
            )
        )
    sampler.cancel()


async def _serve(settings: Settings, conn: Connection) -> None:
    from optix_server.common.quote_topic import quote_channel
    from optix_server.infra.app import OptixServer, build_dependencies, close_dependencies
    from optix_server.infra.db import migrate
    from optix_server.marketdata.streaming import tick_from_payload
    from optix_server.services import create_modules

    deps = build_dependencies(settings)
    await migrate(deps.database)
    server = OptixServer(deps, create_modules(deps, ["marketdata"]))
    port = await server.start()
    published: dict[str, list[tuple[int, float]]] = defaultdict(list)

    async def observe(symbol: str) -> None:
        async with deps.pubsub.subscribe(quote_channel(symbol)) as messages:
            async for payload in messages:
                tick = tick_from_payload(payload)
                published[symbol].append((tick.sequence, time.time()))

    observers = [asyncio.create_task(observe(s)) for s in SYMBOLS]
    apply_gc_policy(settings.gc_young_threshold)  # as `optix serve` does once started
    conn.send(port)
    await _answer_windows(conn, published)
    for task in observers:
        task.cancel()
    await server.stop(grace=1)
    await close_dependencies(deps)


METHOD = "/optix.marketdata.v1.MarketDataService/StreamQuotes"
BARE_METHOD = "/bench.Fanout/Stream"


def _bare_server_process(conn: Connection) -> None:
    """The bare grpc.aio floor server, answering measurement windows over `conn`."""
    asyncio.run(_serve_bare(conn))


async def _serve_bare(conn: Connection) -> None:
    """The transport floor: a bare grpc.aio server (no interceptors, no hub, no auth) that
    writes one pre-encoded 10-quote message per tick to every open stream."""
    from google.protobuf.timestamp_pb2 import Timestamp

    from optix.common.v1 import instrument_pb2
    from optix.marketdata.v1 import quote_pb2

    published: dict[str, list[tuple[int, float]]] = defaultdict(list)
    holder: list[asyncio.Future[bytes]] = [asyncio.get_running_loop().create_future()]

    async def stream(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> Any:
        while True:
            yield await asyncio.shield(holder[0])

    async def ticker() -> None:
        sequence = 0
        start = time.time()
        while True:
            sequence += 1
            scheduled = start + sequence / TICK_RATE
            await asyncio.sleep(max(0.0, scheduled - time.time()))
            now = time.time()
            # Stamped with the scheduled time, like the simulated feed's quotes, so both
            # latencies include the timer's wake-up.
            stamp = Timestamp()
            stamp.FromNanoseconds(int(scheduled * 1e9))
            batch = pb.StreamQuotesResponse()
            for symbol in SYMBOLS:
                # Every field a simulated quote carries, so both servers write as many bytes.
                batch.quotes.quotes.append(
                    quote_pb2.Quote(
                        symbol=symbol,
                        instrument_type=instrument_pb2.INSTRUMENT_TYPE_EQUITY,
                        bid=189.99,
                        ask=190.01,
                        last=190.0,
                        mark=190.0,
                        bid_size=300,
                        ask_size=400,
                        volume=1_234_500 + sequence * 100,
                        open=188.5,
                        high=191.25,
                        low=187.75,
                        previous_close=188.0,
                        change=2.0,
                        change_percent=1.06,
                        quote_time=stamp,
                        source=quote_pb2.DATA_SOURCE_SIMULATED,
                        sequence=sequence,
                    )
                )
                published[symbol].append((sequence, now))
            done, holder[0] = holder[0], asyncio.get_running_loop().create_future()
            done.set_result(batch.SerializeToString())

    handler: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_stream_rpc_method_handler(stream)
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("bench.Fanout", {"Stream": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    tick_task = asyncio.create_task(ticker())
    # The same collector policy as the OPTIX server, so the comparison is of the serving code.
    apply_gc_policy()
    conn.send(port)
    await _answer_windows(conn, published)
    tick_task.cancel()
    await server.stop(0)


@dataclass
class ClientStats:
    """What one phase's clients saw (decoded after the run, off the hot path)."""

    latencies: list[float] = field(default_factory=list)
    # (client, symbol) -> sequences received inside the window
    received: dict[tuple[int, str], set[int]] = field(default_factory=lambda: defaultdict(set))
    # (client, symbol) -> newest sequence received at all (window end + grace included)
    newest: dict[tuple[int, str], int] = field(default_factory=dict)
    messages: int = 0
    quotes: int = 0

    def add(self, index: int, arrived: float, raw: bytes, window: tuple[float, float]) -> None:
        """Account one received stream message."""
        message = pb.StreamQuotesResponse.FromString(raw)
        if message.WhichOneof("payload") != "quotes":
            return
        start, end = window
        counted = False
        for q in message.quotes.quotes:
            key = (index, q.symbol)
            self.newest[key] = max(self.newest.get(key, 0), q.sequence)
            tick_time = q.quote_time.seconds + q.quote_time.nanos * 1e-9
            if start <= tick_time <= end:
                if not counted:
                    counted = True
                    self.messages += 1
                self.quotes += 1
                self.latencies.append(arrived - tick_time)
                self.received[key].add(q.sequence)


FANOUT = Path(__file__).resolve().parents[2] / "clients" / "web" / "dist" / "node" / "fanout.mjs"
_RECORD_HEAD = struct.Struct("<IdI")


@dataclass(frozen=True)
class Phase:
    """One run's client-side observations and the server's account of the same window."""

    stats: ClientStats
    published: Published
    server_cpu_seconds: float


def _phase(
    address: str,
    token: str,
    clients: int,
    conn: Connection,
    method_path: str = METHOD,
) -> Phase:
    """Run `clients` streams from the Node driver (clients/web/src/node/fanout.ts), then decode
    what they received and ask the server for the ticks it published in the same window."""
    node = shutil.which("node")
    assert node is not None and FANOUT.exists(), "the Node driver is missing: run `make web`"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "received.bin"
        request = pb.StreamQuotesRequest(symbols=SYMBOLS).SerializeToString()
        done = subprocess.run(
            [
                node,
                str(FANOUT),
                *("--address", address, "--method", method_path, "--request", request.hex()),
                *("--clients", str(clients), "--channels", str(CHANNELS), "--token", token),
                *("--warmup", str(WARMUP_S), "--measure", str(MEASURE_S), "--grace", str(GRACE_S)),
                *("--out", str(out)),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
        windows = [line["window"] for line in lines if "window" in line]
        assert done.returncode == 0 and windows, f"fanout driver failed: {lines} {done.stderr}"
        start, end = windows[0]
        stats = ClientStats()
        data = out.read_bytes()
    offset = 0
    while offset < len(data):
        index, arrived, length = _RECORD_HEAD.unpack_from(data, offset)
        offset += _RECORD_HEAD.size
        stats.add(index, arrived, data[offset : offset + length], (start, end))
        offset += length
    conn.send((start, end))
    published, cpu_seconds = conn.recv()
    return Phase(stats, published, cpu_seconds)


def _report(name: str, clients: int, phase: Phase) -> float:
    """Print one phase's latency, delivery and server CPU; returns the p99 in ms."""
    stats, published = phase.stats, phase.published
    lat = np.array(stats.latencies) * 1000
    total = direct = covered = 0
    for index in range(clients):
        for symbol, seqs in published.items():
            got = stats.received.get((index, symbol), set())
            newest = stats.newest.get((index, symbol), 0)
            total += len(seqs)
            direct += sum(1 for s in seqs if s in got)
            covered += sum(1 for s in seqs if s <= newest)
    p50, p99 = (float(np.percentile(lat, p)) for p in (50, 99)) if lat.size else (0.0, 0.0)
    per_message = stats.quotes / stats.messages if stats.messages else 0.0
    ticks = max(len(v) for v in published.values()) if published else 0
    print(
        f"{name}: {clients} clients, {sum(len(v) for v in published.values())} ticks published "
        f"in {MEASURE_S:.0f} s, {stats.quotes} quotes received "
        f"({per_message:.1f} quotes/message)"
    )
    print(
        f"  tick-to-client latency: p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
        f"max {lat.max() if lat.size else 0.0:.1f} ms; server CPU "
        f"{phase.server_cpu_seconds * 1000 / max(ticks, 1):.1f} ms per tick"
    )
    print(
        f"  delivery: {direct / max(total, 1):.2%} of ticks received as themselves, "
        f"{covered / max(total, 1):.2%} received or superseded by a newer quote"
    )
    return p99


def main() -> None:
    """1 client through OPTIX, then 1,000 clients through OPTIX and through a bare grpc.aio
    server (the transport floor on this machine) in alternating rounds; print latencies,
    delivery, server CPU and ratios (medians over the rounds); then 1,000 clients of a replica
    fed through Redis by another process."""
    from optix_server.infra.auth.factory import build_token_authority

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            port=0,
            services=("marketdata",),
            var_dir=Path(tmp),
            log_level="WARNING",
            env={
                "OPTIX_MARKETDATA_TICK_RATE": str(TICK_RATE),
                "OPTIX_MARKETDATA_QUOTE_CACHE_TTL": "2",
            },
        )
        token = build_token_authority(settings).issue_access_token(
            "bench", session_id="bench", ttl=timedelta(hours=1)
        )
        with (
            spawned_server(_server_process, settings) as (optix, optix_port),
            spawned_server(_bare_server_process) as (bare, bare_port),
        ):
            address = f"127.0.0.1:{optix_port}"
            _report("OPTIX, 1 client", 1, _phase(address, token.token, 1, optix))
            p99s: dict[str, list[float]] = defaultdict(list)
            cpu: dict[str, list[float]] = defaultdict(list)
            for round_ in range(1, ROUNDS + 1):
                # Alternating, so machine noise falls on both alike.
                for name, conn, addr, tok, method in (
                    ("OPTIX", optix, address, token.token, METHOD),
                    ("bare grpc.aio floor", bare, f"127.0.0.1:{bare_port}", "", BARE_METHOD),
                ):
                    phase = _phase(addr, tok, CLIENTS, conn, method)
                    p99s[name].append(
                        _report(f"{name}, {CLIENTS} clients, round {round_}", CLIENTS, phase)
                    )
                    cpu[name].append(phase.server_cpu_seconds)
        # The cross-replica path: a replica that owns no feed streams the ticks another
        # process publishes through Redis (one burst per tick, so still one message a tick).
        prefix = f"optix-bench-{uuid.uuid4().hex[:8]}:"
        shared = dataclasses.replace(settings, redis_url=REDIS_URL, redis_prefix=prefix)
        replica = dataclasses.replace(
            shared, env={**shared.env, "OPTIX_MARKETDATA_FEED_OWNER": "false"}
        )
        with (
            spawned_server(_server_process, shared),
            spawned_server(_server_process, replica) as (fed, fed_port),
        ):
            phase = _phase(f"127.0.0.1:{fed_port}", token.token, CLIENTS, fed)
            redis_p99 = _report(
                f"OPTIX replica fed through Redis, {CLIENTS} clients", CLIENTS, phase
            )
    optix_p99 = statistics.median(p99s["OPTIX"])
    bare_p99 = statistics.median(p99s["bare grpc.aio floor"])
    cpu_ratio = statistics.median(cpu["OPTIX"]) / max(
        statistics.median(cpu["bare grpc.aio floor"]), 1e-9
    )
    print(
        f"median p99 with {CLIENTS} clients: OPTIX {optix_p99:.1f} ms, bare grpc.aio floor "
        f"{bare_p99:.1f} ms ({optix_p99 / max(bare_p99, 1e-9):.2f}x); server CPU OPTIX vs floor "
        f"{cpu_ratio:.2f}x; goal p99 < 50 ms: {optix_p99 < 50}"
    )
    print(
        f"replica fed through Redis: p99 {redis_p99:.1f} ms "
        f"({redis_p99 / max(optix_p99, 1e-9):.2f}x the in-process median)"
    )


if __name__ == "__main__":
    main()
