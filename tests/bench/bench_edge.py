"""Edge benchmark (h2load, loopback only, ~60 s): unary QPS and p99 through Envoy vs direct, and
the cheapest authenticated RPC vs a bare grpc.aio echo server. Prints ratios from one run."""

from __future__ import annotations

import asyncio
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc

from optix.marketdata.v1 import marketdata_service_pb2
from optix_client import OptixClient
from tests.e2e.stack import envoy, envoy_env, free_port, optix_server, render_envoy_config

DURATION_S = 5
WARMUP_S = 1
# Targets are measured in interleaved rounds and each keeps its best round: on a shared 2-core
# machine, other processes steal CPU from whichever run they overlap, not from a target.
ROUNDS = 2
CONNECTIONS = 4
STREAMS_PER_CONNECTION = 8
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
GET_QUOTE = "/optix.marketdata.v1.MarketDataService/GetQuote"
ECHO = "/bench.Echo/Echo"
ECHO_SERVER = """
import asyncio, grpc, sys
async def main(port):
    echo = grpc.unary_unary_rpc_method_handler(lambda request, context: request)
    server = grpc.aio.server()
    handlers = grpc.method_handlers_generic_handler("bench.Echo", {"Echo": echo})
    server.add_generic_rpc_handlers([handlers])
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()
asyncio.run(main(int(sys.argv[1])))
"""


@dataclass(frozen=True)
class Result:
    """One h2load run: requests per second and 99th-percentile latency."""

    qps: float
    p99_ms: float
    succeeded: int
    failed: int


def grpc_frame(message: bytes) -> bytes:
    """A length-prefixed gRPC message, the body h2load posts."""
    return struct.pack(">BI", 0, len(message)) + message


def h2load(url: str, body: bytes, headers: Sequence[str] = ()) -> Result:
    """Drive unary gRPC load at `url` for DURATION_S seconds and read QPS and p99."""
    with tempfile.TemporaryDirectory() as tmp:
        data, log = Path(tmp) / "body.bin", Path(tmp) / "log.tsv"
        data.write_bytes(body)
        argv = [
            "h2load", url, "--data", str(data), "-c", str(CONNECTIONS),
            "-m", str(STREAMS_PER_CONNECTION), "-t", "1",
            "--duration", str(DURATION_S), "--warm-up-time", str(WARMUP_S),
            "--log-file", str(log),
            "-H", "content-type: application/grpc", "-H", "te: trailers",
        ]  # fmt: skip
        for header in headers:
            argv += ["-H", header]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=DURATION_S + 60)
        if done.returncode != 0:
            raise RuntimeError(f"h2load failed: {done.stderr or done.stdout}")
        # Each log line: start time (µs since epoch), HTTP status, elapsed (µs).
        rows = [line.split("\t") for line in log.read_text().splitlines() if line.strip()]
    ok = sorted(int(r[2]) for r in rows if r[1] == "200")
    failed = len(rows) - len(ok)
    if not ok:
        raise RuntimeError(f"no successful requests at {url}")
    p99 = ok[min(len(ok) - 1, int(len(ok) * 0.99))] / 1000.0
    return Result(qps=len(ok) / DURATION_S, p99_ms=p99, succeeded=len(ok), failed=failed)


@contextmanager
def echo_server() -> Iterator[str]:
    """A bare grpc.aio echo server in its own process, like `optix serve` is."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", ECHO_SERVER, str(port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


async def _token_and_check(address: str) -> str:
    """Register a bench user and prove GetQuote succeeds (h2load only sees HTTP 200)."""
    async with OptixClient(address) as client:
        await client.register("bench-edge@example.com", "Blue-Harbor-Lantern-42")
        await client.marketdata.GetQuote(marketdata_service_pb2.GetQuoteRequest(symbol="AAPL"))
        token = client.tokens.session.access_token
    assert token is not None
    return token


def _grpc_ok(address: str, path: str, body: bytes, headers: Sequence[tuple[str, str]]) -> None:
    """One call with a real gRPC client: the benchmarked request must succeed (grpc-status 0)."""
    with grpc.insecure_channel(address) as channel:
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(path)
        call(body[5:], metadata=tuple(headers), timeout=10)


def _line(name: str, result: Result) -> str:
    return (
        f"  {name:<44} {result.qps:8.0f} req/s   p99 {result.p99_ms:7.2f} ms"
        f"   ({result.succeeded} ok, {result.failed} failed)"
    )


def main() -> None:
    """Run the four measurements and print their ratios."""
    if shutil.which("h2load") is None:
        print("bench_edge: h2load not found (apt-get install nghttp2-client); skipped")
        return
    health = grpc_frame(b"")
    quote = grpc_frame(marketdata_service_pb2.GetQuoteRequest(symbol="AAPL").SerializeToString())
    with ExitStack() as stack:
        var = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        server = stack.enter_context(optix_server(var / "var"))
        listen, admin = free_port(), free_port()
        # The edge's rate limits are policy, not proxy cost: lifted so they cannot cap the run.
        env = envoy_env(server.address, listen, admin, OPTIX_ENVOY_RATE_LIMIT_RPS="1000000",
                        OPTIX_ENVOY_RATE_LIMIT_BURST="1000000",
                        OPTIX_ENVOY_CLIENT_RATE_LIMIT_RPS="1000000",
                        OPTIX_ENVOY_CLIENT_RATE_LIMIT_BURST="1000000")  # fmt: skip
        edge = stack.enter_context(
            envoy(render_envoy_config(var / "envoy.yaml", env), listen, admin, concurrency=1)
        )
        echo = stack.enter_context(echo_server())
        token = asyncio.run(_token_and_check(server.address))
        auth = [("authorization", f"Bearer {token}")]
        _grpc_ok(edge.address, HEALTH_CHECK, health, [])
        _grpc_ok(edge.address, GET_QUOTE, quote, auth)
        _grpc_ok(echo, ECHO, quote, [])
        targets = {
            "direct": (f"http://{server.address}{HEALTH_CHECK}", health, ()),
            "proxied": (f"http://{edge.address}{HEALTH_CHECK}", health, ()),
            "authed": (
                f"http://{server.address}{GET_QUOTE}",
                quote,
                (f"authorization: Bearer {token}",),
            ),
            "bare": (f"http://{echo}{ECHO}", quote, ()),
        }
        best: dict[str, Result] = {}
        for _ in range(ROUNDS):
            for name, (url, body, headers) in targets.items():
                result = h2load(url, body, headers)
                if name not in best or result.qps > best[name].qps:
                    best[name] = result
        direct, proxied, authed, bare = (best[n] for n in ("direct", "proxied", "authed", "bare"))
    print(
        f"bench_edge (h2load, {CONNECTIONS}x{STREAMS_PER_CONNECTION} streams, "
        f"best of {ROUNDS} interleaved {DURATION_S}s runs)"
    )
    print(_line("Health/Check direct", direct))
    print(_line("Health/Check through Envoy", proxied))
    print(_line("GetQuote (authenticated) direct", authed))
    print(_line("bare grpc.aio echo", bare))
    print(
        f"  envoy/direct QPS ratio      {proxied.qps / direct.qps:5.2f}x (goal >= 0.80)"
        f"   p99 {proxied.p99_ms / direct.p99_ms:5.2f}x"
    )
    print(
        f"  auth-RPC/echo QPS ratio     {authed.qps / bare.qps:5.2f}x (goal >= 0.70)"
        f"   p99 {authed.p99_ms / bare.p99_ms:5.2f}x"
    )


if __name__ == "__main__":
    main()
