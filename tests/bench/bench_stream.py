"""Quote stream fan-out: tick-to-client latency and delivery with 1,000 concurrent StreamQuotes
clients on 10 symbols at 10 ticks/s each, against a single client measured in the same run.

The server (simulated provider, in-process pub/sub) runs in its own process and records every
tick it publishes; the clients run in this process. Latency is client receive time minus the
quote's tick time. Delivery counts, per client and symbol, the published ticks the client
received itself, and those it received or got a newer (conflated) quote for."""

from __future__ import annotations

import asyncio
import cProfile
import multiprocessing
import os
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from optix.marketdata.v1 import marketdata_service_pb2 as pb
from optix_server.infra.settings import Settings
from optix_server.marketdata.config import DEFAULT_UNIVERSE, MarketDataSettings

CLIENTS = 1000
CHANNELS = 10
TICK_RATE = 10.0
WARMUP_S = 2.0
MEASURE_S = 8.0
GRACE_S = 1.0
SYMBOLS = [i.symbol for i in DEFAULT_UNIVERSE]

Published = dict[str, list[int]]


def _server_process(settings: Settings, conn: Connection) -> None:
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


async def _serve(settings: Settings, conn: Connection) -> None:
    from optix_server.infra.app import OptixServer, build_dependencies, close_dependencies
    from optix_server.infra.db import migrate
    from optix_server.marketdata.streaming import quote_channel, tick_from_payload
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
    conn.send(port)
    loop = asyncio.get_running_loop()
    while True:
        command = await loop.run_in_executor(None, conn.recv)
        if command == "stop":
            break
        start, end = command  # a window: send back the ticks published in it
        conn.send({s: [seq for seq, at in v if start <= at <= end] for s, v in published.items()})
    for task in observers:
        task.cancel()
    await server.stop(grace=1)
    await close_dependencies(deps)


METHOD = "/optix.marketdata.v1.MarketDataService/StreamQuotes"
BARE_METHOD = "/bench.Fanout/Stream"
START_WAVE = 100


def _bare_server_process(conn: Connection) -> None:
    asyncio.run(_serve_bare(conn))


async def _serve_bare(conn: Connection) -> None:
    """The transport floor: a bare grpc.aio server (no interceptors, no hub, no auth) that
    writes one pre-encoded 10-quote message per tick to every open stream."""
    from google.protobuf.timestamp_pb2 import Timestamp

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
            await asyncio.sleep(max(0.0, start + sequence / TICK_RATE - time.time()))
            now = time.time()
            stamp = Timestamp()
            stamp.FromNanoseconds(int(now * 1e9))
            batch = pb.StreamQuotesResponse()
            for symbol in SYMBOLS:
                batch.quotes.quotes.append(
                    quote_pb2.Quote(symbol=symbol, sequence=sequence, quote_time=stamp, last=1.0)
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
    conn.send(port)
    loop = asyncio.get_running_loop()
    while True:
        command = await loop.run_in_executor(None, conn.recv)
        if command == "stop":
            break
        start, end = command
        conn.send({s: [seq for seq, at in v if start <= at <= end] for s, v in published.items()})
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


async def _client(
    method_path: str,
    index: int,
    channel: grpc.aio.Channel,
    metadata: tuple[tuple[str, str], ...],
    log: list[tuple[int, float, bytes]],
    started: asyncio.Event,
    window: list[float],
) -> None:
    # Raw bytes in, timestamped and kept: decoding happens after the run, so the client
    # process spends its time receiving rather than in Python per quote.
    method: grpc.aio.UnaryStreamMultiCallable[pb.StreamQuotesRequest, bytes] = channel.unary_stream(
        method_path, request_serializer=pb.StreamQuotesRequest.SerializeToString
    )
    call = method(pb.StreamQuotesRequest(symbols=SYMBOLS), metadata=metadata)
    try:
        async for raw in call:
            arrived = time.time()
            started.set()
            if arrived >= window[0]:
                log.append((index, arrived, raw))
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.CANCELLED:
            raise


async def _phase(
    address: str,
    metadata: tuple[tuple[str, str], ...],
    clients: int,
    conn: Connection,
    method_path: str = METHOD,
) -> tuple[ClientStats, Published]:
    channels = [
        grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(min(CHANNELS, clients))
    ]
    window = [float("inf"), float("inf")]
    log: list[tuple[int, float, bytes]] = []
    tasks: list[asyncio.Task[None]] = []
    # Open streams in waves, each wave waiting for its streams' first message.
    for wave in range(0, clients, START_WAVE):
        events = []
        for i in range(wave, min(clients, wave + START_WAVE)):
            started = asyncio.Event()
            events.append(started)
            tasks.append(
                asyncio.create_task(
                    _client(
                        method_path, i, channels[i % len(channels)], metadata, log, started, window
                    )
                )
            )
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), 120)
    await asyncio.sleep(WARMUP_S)  # a load test's fixed duration, not a wait for an event
    window[0] = time.time()
    window[1] = window[0] + MEASURE_S
    await asyncio.sleep(MEASURE_S + GRACE_S)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for channel in channels:
        await channel.close()
    stats = ClientStats()
    for index, arrived, raw in log:
        stats.add(index, arrived, raw, (window[0], window[1]))
    conn.send((window[0], window[1]))
    published: Published = conn.recv()
    return stats, published


def _report(name: str, clients: int, stats: ClientStats, published: Published) -> float:
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
    print(
        f"{name}: {clients} clients, {sum(len(v) for v in published.values())} ticks published "
        f"in {MEASURE_S:.0f} s, {stats.quotes} quotes received "
        f"({per_message:.1f} quotes/message)"
    )
    print(f"  tick-to-client latency: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {lat.max():.1f} ms")
    print(
        f"  delivery: {direct / max(total, 1):.2%} of ticks received as themselves, "
        f"{covered / max(total, 1):.2%} received or superseded by a newer quote"
    )
    return p99


def _run_bare() -> tuple[ClientStats, Published]:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_bare_server_process, args=(child,), daemon=True)
    process.start()
    try:
        port = parent.recv()
        return asyncio.run(_phase(f"127.0.0.1:{port}", (), CLIENTS, parent, BARE_METHOD))
    finally:
        parent.send("stop")
        process.join(15)
        if process.is_alive():
            process.kill()


def main() -> None:
    """1 client and 1,000 clients through OPTIX, and 1,000 through a bare grpc.aio server
    (the transport floor on this machine); print latencies, delivery and ratios."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            port=0,
            services=("marketdata",),
            var_dir=Path(tmp),
            log_level="WARNING",
            marketdata=MarketDataSettings(tick_rate=TICK_RATE, quote_cache_ttl=2.0),
        )
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(target=_server_process, args=(settings, child), daemon=True)
        process.start()
        try:
            port = parent.recv()
            from optix_server.infra.auth.factory import build_token_authority

            token = build_token_authority(settings).issue_access_token(
                "bench", session_id="bench", ttl=timedelta(hours=1)
            )
            metadata = (("authorization", f"Bearer {token.token}"),)
            address = f"127.0.0.1:{port}"
            base = asyncio.run(_phase(address, metadata, 1, parent))
            load = asyncio.run(_phase(address, metadata, CLIENTS, parent))
        finally:
            parent.send("stop")
            process.join(15)
            if process.is_alive():
                process.kill()
    bare = _run_bare()
    p99_base = _report("OPTIX, 1 client", 1, *base)
    p99_load = _report(f"OPTIX, {CLIENTS} clients", CLIENTS, *load)
    p99_bare = _report(f"bare grpc.aio floor, {CLIENTS} clients", CLIENTS, *bare)
    print(
        f"p99 with {CLIENTS} clients vs 1 client: {p99_load / max(p99_base, 1e-9):.2f}x; "
        f"OPTIX vs the bare grpc.aio floor: {p99_load / max(p99_bare, 1e-9):.2f}x; "
        f"goal p99 < 50 ms: {p99_load < 50}"
    )


if __name__ == "__main__":
    main()
