"""GetOptionsChain at transport speed: 20 concurrent clients request the full chain of the
largest simulated underlying (QQQ, 3,912 contracts, ~626 kB) through a real OPTIX server (the
marketdata slice on its embedded defaults, spawned like `optix serve`), against the floor
measured in the same run: a bare grpc.aio server (no interceptors, no auth) answering the same
response bytes pre-encoded. Rounds alternate between the two so machine noise falls on both.
Goals: >= 0.5x the floor's requests/s and p50 <= 2x the floor's.

The simulated market ticks twice a second by default and every tick is a new market update:
the first request of an update prices and encodes the chain (the others of that update wait
for that one computation, then share it), so the load mixes warm hits and one cold build per
tick; the server's hit ratio over the window says how many of each. A last phase times single
cold requests (the first of an update, no other load) with the server's breakdown of the build,
and, in this process, what the previous design cost per request (pricing the chain and building
the messages contract by contract) for the same chain.

OPTIX_BENCH_CHAIN_SECONDS (default 20) sets the measured seconds per server."""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from optix.marketdata.v1 import marketdata_service_pb2 as pb
from optix_server.infra.gc_policy import apply_gc_policy
from optix_server.infra.settings import Settings
from tests.bench.spawned import spawned_server

CLIENTS = 20
UNDERLYING = "QQQ"
MEASURE_S = float(os.environ.get("OPTIX_BENCH_CHAIN_SECONDS", "20"))
ROUNDS = 2
WARMUP_S = 1.0
COLD_PROBES = 5
METHOD = "/optix.marketdata.v1.MarketDataService/GetOptionsChain"
BARE_METHOD = "/bench.Chain/Get"
REQUEST = pb.GetOptionsChainRequest(underlying=UNDERLYING).SerializeToString()


def _server_process(settings: Settings, conn: Connection) -> None:
    """The OPTIX server (marketdata only), answering stats requests over `conn`."""
    asyncio.run(_serve(settings, conn))


async def _serve(settings: Settings, conn: Connection) -> None:
    from optix_server.infra.app import OptixServer, build_dependencies, close_dependencies
    from optix_server.infra.db import migrate
    from optix_server.marketdata.service import MarketDataService
    from optix_server.services import create_modules

    deps = build_dependencies(settings)
    await migrate(deps.database)
    server = OptixServer(deps, create_modules(deps, ["marketdata"]))
    port = await server.start()
    module = next(m for m in server.modules if m.name == "marketdata")
    service = module.extra["service"]
    assert isinstance(service, MarketDataService)
    apply_gc_policy(settings.gc_young_threshold)  # as `optix serve` does once started
    conn.send(port)
    loop = asyncio.get_running_loop()
    while (command := await loop.run_in_executor(None, conn.recv)) != "stop":
        assert command == "stats"
        shared = service.chains.peek(UNDERLYING)
        stats = service.chains.stats
        conn.send(
            (
                (stats.hits, stats.joined, stats.computed, stats.evicted),
                shared.timings if shared is not None else None,
            )
        )
    await server.stop(grace=1)
    await close_dependencies(deps)


def _bare_server_process(payload: bytes, conn: Connection) -> None:
    """The floor: a bare grpc.aio server answering `payload` as it is."""
    asyncio.run(_serve_bare(payload, conn))


async def _serve_bare(payload: bytes, conn: Connection) -> None:
    async def get(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        return payload

    handler: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(get)
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("bench.Chain", {"Get": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    apply_gc_policy()  # the same collector policy as the OPTIX server
    conn.send(port)
    loop = asyncio.get_running_loop()
    while await loop.run_in_executor(None, conn.recv) != "stop":
        conn.send(((0, 0, 0, 0), None))
    await server.stop(0)


@dataclass
class Load:
    """What one load window's clients saw."""

    latencies: list[float]
    seconds: float
    size: int

    @property
    def rate(self) -> float:
        """Requests per second."""
        return len(self.latencies) / self.seconds

    def percentile(self, p: float) -> float:
        """Latency percentile in ms."""
        return float(np.percentile(np.array(self.latencies) * 1000, p))


def _channels(port: int) -> list[grpc.aio.Channel]:
    # One connection per client, as separate app users would have.
    return [
        grpc.aio.insecure_channel(
            f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]
        )
        for _ in range(CLIENTS)
    ]


async def _load(port: int, method: str, metadata: tuple[tuple[str, str], ...]) -> Load:
    """CLIENTS closed-loop clients for WARMUP_S, then MEASURE_S / ROUNDS measured seconds."""
    channels = _channels(port)
    # Bytes in, bytes out: the clients decode nothing.
    calls: list[grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]] = [
        c.unary_unary(method) for c in channels
    ]
    latencies: list[float] = []
    size = 0
    started = time.perf_counter()
    measure_from = started + WARMUP_S
    measure_to = measure_from + MEASURE_S / ROUNDS

    async def client(call: Any) -> None:
        nonlocal size
        while (now := time.perf_counter()) < measure_to:
            reply = await call(REQUEST, metadata=metadata, timeout=30)
            done = time.perf_counter()
            size = len(reply)
            if now >= measure_from:
                latencies.append(done - now)

    try:
        await asyncio.gather(*(client(call) for call in calls))
    finally:
        for channel in channels:
            await channel.close()
    return Load(latencies, MEASURE_S / ROUNDS, size)


async def _one(
    port: int, method: str, metadata: tuple[tuple[str, str], ...]
) -> tuple[float, bytes]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(method)
        await channel.channel_ready()
        started = time.perf_counter()
        reply: bytes = await call(REQUEST, metadata=metadata, timeout=30)
        return time.perf_counter() - started, reply


def _stats(conn: Connection) -> tuple[tuple[int, int, int, int], Any]:
    conn.send("stats")
    result: tuple[tuple[int, int, int, int], Any] = conn.recv()
    return result


def _previous_design_ms(payload: bytes) -> float:
    """Per request before the shared chain: pricing the raw chain and building the response
    message by message (convert.chain_to_proto), for the chain OPTIX just served."""
    from optix_server.common.occ import parse_occ
    from optix_server.marketdata.convert import chain_to_proto, quote_from_proto
    from optix_server.marketdata.models import DataSource, OptionMarket, RawChain
    from optix_server.marketdata.priced_chain import price_chain
    from optix_server.marketdata.pricing import analyze_chain, warm_up

    warm_up()
    served = pb.GetOptionsChainResponse.FromString(payload).chain
    raw = RawChain(
        served.underlying,
        quote_from_proto(served.underlying_quote),
        [
            OptionMarket(
                parse_occ(o.contract.symbol), o.bid, o.ask, o.last, o.volume, o.open_interest
            )
            for o in served.options
        ],
        DataSource.SIMULATED,
    )
    p = served.pricing
    times = []
    for _ in range(5):
        started = time.perf_counter()
        priced = price_chain(raw, p.risk_free_rate, p.dividend_yield, analyze_chain)
        pb.GetOptionsChainResponse(
            chain=chain_to_proto(priced.chain(np.arange(priced.size)))
        ).SerializeToString()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    """Alternate OPTIX and floor rounds under load, then single cold requests; print rates,
    latencies, the hit ratio and ratios against the floor."""
    from optix_server.infra.auth.factory import build_token_authority

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            port=0, services=("marketdata",), var_dir=Path(tmp), log_level="WARNING", env={}
        )
        token = build_token_authority(settings).issue_access_token(
            "bench", session_id="bench", ttl=timedelta(hours=1)
        )
        metadata = (("authorization", f"Bearer {token.token}"),)
        with spawned_server(_server_process, settings) as (optix, optix_port):
            _, payload = asyncio.run(_one(optix_port, METHOD, metadata))
            served = pb.GetOptionsChainResponse.FromString(payload).chain
            print(
                f"{UNDERLYING} full chain: {len(served.options)} contracts, {len(payload)} bytes; "
                f"{CLIENTS} clients, {MEASURE_S:.0f} s per server in {ROUNDS} alternating rounds"
            )
            loads: dict[str, list[Load]] = {"OPTIX": [], "floor": []}
            with spawned_server(_bare_server_process, payload) as (_bare, bare_port):
                before = _stats(optix)[0]
                for _ in range(ROUNDS):
                    loads["OPTIX"].append(asyncio.run(_load(optix_port, METHOD, metadata)))
                    loads["floor"].append(asyncio.run(_load(bare_port, BARE_METHOD, ())))
                after = _stats(optix)[0]
            hits, joined, computed, evicted = (a - b for a, b in zip(after, before, strict=True))
            cold: list[tuple[float, Any]] = []
            for _ in range(COLD_PROBES):
                time.sleep(0.6)  # past the next tick of the default 2 ticks/s: a new update
                start_computed = _stats(optix)[0][2]
                seconds, _ = asyncio.run(_one(optix_port, METHOD, metadata))
                (_, _, now_computed, _), timings = _stats(optix)
                if now_computed == start_computed + 1:
                    cold.append((seconds, timings))
    previous_ms = _previous_design_ms(payload)
    rows = {}
    for name, runs in loads.items():
        merged = Load([x for r in runs for x in r.latencies], sum(r.seconds for r in runs), 0)
        rows[name] = (merged.rate, merged.percentile(50), merged.percentile(99))
        print(
            f"{name:5}: {merged.rate:7.1f} requests/s, p50 {rows[name][1]:6.1f} ms, "
            f"p99 {rows[name][2]:6.1f} ms ({len(merged.latencies)} requests)"
        )
    (o_rate, o_p50, o_p99), (f_rate, f_p50, f_p99) = rows["OPTIX"], rows["floor"]
    requests = hits + joined + computed
    print(
        f"OPTIX vs floor: {o_rate / f_rate:.2f}x requests/s "
        f"(goal >= 0.5x: {o_rate / f_rate >= 0.5}), "
        f"p50 {o_p50 / f_p50:.2f}x (goal <= 2x: {o_p50 / f_p50 <= 2}), p99 {o_p99 / f_p99:.2f}x"
    )
    print(
        f"chain cache over the load (warm-up included): {requests} requests, {hits} hits, "
        f"{joined} joined an update's computation, {computed} computed (one per update), "
        f"{evicted} evicted; hit ratio {(hits + joined) / max(requests, 1):.2%}"
    )
    for seconds, t in cold:
        built = (t.fetch + t.assembly + t.pricing + t.encoding) * 1000
        print(
            f"cold request (first of an update): {seconds * 1000:.1f} ms = provider fetch "
            f"{t.fetch * 1000:.1f} + assembly {t.assembly * 1000:.1f} + pricing "
            f"{t.pricing * 1000:.1f} + encoding {t.encoding * 1000:.1f} + transport and the "
            f"rest {seconds * 1000 - built:.1f}"
        )
    if cold:
        median_cold = statistics.median(s for s, _ in cold) * 1000
        print(
            f"median cold request {median_cold:.1f} ms ({median_cold / f_p50:.2f}x the floor's "
            f"p50 under load); the previous design's per-request pricing and message building "
            f"for this chain, in-process: {previous_ms:.1f} ms "
            f"({previous_ms / max(median_cold, 1e-9):.1f}x a whole cold request now)"
        )


if __name__ == "__main__":
    main()
