"""Scale-out benchmark (h2load, loopback only, ~2 min): authenticated unary QPS through Envoy
with two `optix serve` replicas behind it against one replica, measured in the same run; then a
pub/sub probe of what quote fan-out across replicas costs per tick (docs/SCALING.md uses both).

Both replicas are real processes on one PostgreSQL database (a fresh one, dropped afterwards)
and one Redis (a unique key prefix), signing and verifying with one shared key directory, as a
deployment's replicas do. Two Envoys run side by side: one with replica A as its only endpoint,
one with A and B (`OPTIX_ENVOY_UPSTREAM_DEFAULT=a,b`). The RPC is UserService/GetMe with a
bearer token: the interceptor verifies the JWT (no I/O) and the service reads the user's row
from PostgreSQL, so every call also costs the shared database something.

This machine has 2 cores shared by h2load, Envoy, PostgreSQL and the replicas, so the closed-loop
QPS ratio is bounded well below 2x. The figure that carries to a larger machine is the CPU per
request: CPU seconds of every process involved (utime + stime from /proc/<pid>/stat before and
after each run) divided by the requests served, for one and for two replicas, closed loop and
then paced at the same rate per replica (one replica at r, two at 2r, r well below a core's
worth), where no process is starved by another. Targets alternate in rounds so that other work
on the machine falls on both alike; QPS is the best round, CPU per request the median.

The probe publishes encoded quotes through RedisPubSub at a steady rate, first to no subscriber
and then to PROBE_SUBSCRIBERS processes subscribed to every channel (as each replica with quote
streams is), and prints Redis's CPU per PUBLISH in both cases (the difference is the cost of a
delivered copy), the publisher's CPU per message and each subscriber's per received tick."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import re
import resource
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

import asyncpg
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from sqlalchemy.engine import make_url

from optix.common.v1 import instrument_pb2
from optix.marketdata.v1 import quote_pb2
from optix.user.v1 import user_service_pb2
from optix_client import OptixClient
from optix_server.infra.pubsub import RedisPubSub
from optix_server.marketdata.streaming import tick_from_payload
from tests.bench.bench_edge import grpc_frame
from tests.e2e.stack import (
    BIN,
    REPO,
    START_TIMEOUT_S,
    Edge,
    LogPump,
    envoy,
    envoy_env,
    free_port,
    render_envoy_config,
)
from tests.support.backends import fresh_database_url, postgres_admin_url, redis_namespace

DURATION_S = 5
WARMUP_S = 2
ROUNDS = 3
# The paced rounds offer each replica this fraction of one replica's best closed-loop QPS:
# one replica at that rate, two at twice it, so both carry the same load per replica and no
# process waits for a core (two saturated replicas on 2 cores are starved by each other).
PACED_FRACTION = 0.3
IDLE_S = 3.0
CONNECTIONS = 4
STREAMS_PER_CONNECTION = 8
GET_ME = "/optix.user.v1.UserService/GetMe"
EMAIL = "bench-scale@example.com"
PASSWORD = "Blue-Harbor-Lantern-42"
# The services .ci/run uses (TOOLCHAIN: they run on the project's machines).
LOCAL_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"
# Part 2, the pub/sub probe: encoded quotes published at PROBE_RATE a second over PROBE_CHANNELS
# channels for PROBE_S, pipelined in bursts of PROBE_BURST, first to no subscriber, then to
# PROBE_SUBSCRIBERS processes each subscribed to every channel (as every replica with streams
# on those symbols is).
PROBE_CHANNELS = 100
PROBE_RATE = 4000
PROBE_S = 5.0
PROBE_BURST = 100
PROBE_SUBSCRIBERS = 2
# CPU is read for each of these; the last two are shared or the load generator, not serving.
ROLES = ("replicas", "envoy", "postgres", "redis", "h2load")
SERVING = ("replicas", "envoy", "postgres")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
HEALTHY_TIMEOUT_S = 30.0
# Rate limits are policy, not capacity: lifted so they cannot cap the run.
UNLIMITED = {
    "OPTIX_ENVOY_RATE_LIMIT_RPS": "1000000",
    "OPTIX_ENVOY_RATE_LIMIT_BURST": "1000000",
    "OPTIX_ENVOY_CLIENT_RATE_LIMIT_RPS": "1000000",
    "OPTIX_ENVOY_CLIENT_RATE_LIMIT_BURST": "1000000",
}


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of one process (all its threads), in seconds; 0 when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # The command name (field 2) may hold spaces: the fields after its ")" start at state.
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class Replica:
    """One `optix serve` process and the address it serves on."""

    proc: subprocess.Popen[bytes]
    logs: LogPump
    address: str


@contextmanager
def replica(name: str, var: Path, env: Mapping[str, str]) -> Iterator[Replica]:
    """`optix serve` (user service only) on a free port with `env`; yields once SERVING."""
    port = free_port()
    child_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OPTIX_")},
        "OPTIX_VAR_DIR": str(var / name),
        "OPTIX_SERVICES": "user",
        "OPTIX_LOG_LEVEL": "WARNING",
        "OPTIX_LOG_FORMAT": "json",
        "OPTIX_SHUTDOWN_GRACE_SECONDS": "1",
        "OPTIX_TRUSTED_PROXIES": "127.0.0.1/32,::1/128",
        **env,
    }
    proc = subprocess.Popen(
        [str(BIN / "optix"), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=child_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )
    logs = LogPump()
    threading.Thread(target=logs.run, args=(proc.stdout,), daemon=True).start()
    address = f"127.0.0.1:{port}"
    try:
        wait_serving(address, logs, proc)
        yield Replica(proc, logs, address)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def wait_serving(address: str, logs: LogPump, proc: subprocess.Popen[bytes]) -> None:
    """Poll grpc.health.v1 until the replica answers SERVING (NOT_SERVING while it starts)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"optix serve exited:\n{logs.tail()}")
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=2, wait_for_ready=True)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"optix serve did not start at {address}:\n{logs.tail()}")
            time.sleep(0.1)


def migrate(database_url: str) -> None:
    """`optix migrate` on the shared database (replicas refuse an unmigrated PostgreSQL)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTIX_")}
    subprocess.run(
        [str(BIN / "optix"), "migrate"],
        env={**env, "OPTIX_DATABASE_URL": database_url, "OPTIX_LOG_LEVEL": "WARNING"},
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=120,
    )


def host_counts(edge: Edge) -> dict[str, int]:
    """rq_success per upstream host:port from Envoy's admin /clusters, summed over clusters."""
    with urllib.request.urlopen(f"{edge.admin_url}/clusters", timeout=5) as answer:
        text = answer.read().decode()
    counts: dict[str, int] = {}
    for host, value in re.findall(r"::([0-9.]+:[0-9]+)::rq_success::([0-9]+)", text):
        counts[host] = counts.get(host, 0) + int(value)
    return counts


def wait_healthy(edge: Edge, hosts: Sequence[str]) -> None:
    """Block until Envoy's active health checks have marked every one of `hosts` healthy."""
    deadline = time.monotonic() + HEALTHY_TIMEOUT_S
    while True:
        with urllib.request.urlopen(f"{edge.admin_url}/clusters", timeout=5) as answer:
            text = answer.read().decode()
        flags = dict(re.findall(r"::([0-9.]+:[0-9]+)::health_flags::(\S+)", text))
        if all(flags.get(host) == "healthy" for host in hosts):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"Envoy did not mark {hosts} healthy: {flags}")
        time.sleep(0.2)


async def backend_pids(database: str) -> set[int]:
    """PostgreSQL backend processes connected to `database` (the replicas' pools)."""
    admin = make_url(postgres_admin_url()).set(drivername="postgresql")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", database)
    finally:
        await conn.close()
    return {int(row["pid"]) for row in rows}


def redis_cpu_seconds(client: Redis) -> float:
    """CPU seconds the whole Redis server has used (it is shared: other work shows up too)."""
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


@dataclass
class Run:
    """One h2load run and the CPU every process spent during it."""

    qps: float
    p99_ms: float
    succeeded: int
    failed: int
    # CPU seconds by role: "replicas", "envoy", "postgres", "redis", "h2load".
    cpu: dict[str, float] = field(default_factory=dict)
    per_replica: list[float] = field(default_factory=list)

    def per_request_us(self, role: str) -> float:
        """CPU microseconds of `role` per successful request."""
        return self.cpu[role] / max(self.succeeded, 1) * 1e6


@dataclass
class Target:
    """An Envoy and the replicas behind it."""

    name: str
    edge: Edge
    replicas: list[Replica]


def h2load(
    url: str, body: bytes, token: str, seconds: float, rate: float | None = None
) -> tuple[int, int, float]:
    """Unary load at `url` for `seconds`: closed loop, or paced at `rate` requests/s in all;
    (succeeded, failed, p99 ms)."""
    with tempfile.TemporaryDirectory() as tmp:
        data, log = Path(tmp) / "body.bin", Path(tmp) / "log.tsv"
        data.write_bytes(body)
        argv = [
            "h2load", url, "--data", str(data), "-c", str(CONNECTIONS),
            "-m", str(STREAMS_PER_CONNECTION), "-t", "1", "--duration", f"{seconds:g}",
            "--log-file", str(log),
            "-H", "content-type: application/grpc", "-H", "te: trailers",
            "-H", f"authorization: Bearer {token}",
        ]  # fmt: skip
        if rate is not None:
            argv += ["--rps", f"{rate / CONNECTIONS:.1f}"]  # h2load paces each connection
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
        if done.returncode != 0:
            raise RuntimeError(f"h2load failed: {done.stderr or done.stdout}")
        # Each log line: start time (µs since epoch), HTTP status, elapsed (µs).
        rows = [line.split("\t") for line in log.read_text().splitlines() if line.strip()]
    ok = sorted(int(r[2]) for r in rows if r[1] == "200")
    if not ok:
        raise RuntimeError(f"no successful requests at {url}")
    return len(ok), len(rows) - len(ok), ok[min(len(ok) - 1, int(len(ok) * 0.99))] / 1000.0


@dataclass
class Bench:
    """Everything a measured run needs to read CPU from."""

    database: str
    redis: Redis
    token: str
    body: bytes

    async def cpu_snapshot(self, target: Target) -> dict[str, object]:
        """CPU seconds so far of every process that serves `target`'s calls."""
        pids = await backend_pids(self.database)
        return {
            "replicas": [process_cpu_seconds(r.proc.pid) for r in target.replicas],
            "envoy": process_cpu_seconds(target.edge.process.proc.pid),
            "postgres": {pid: process_cpu_seconds(pid) for pid in pids},
            "redis": redis_cpu_seconds(self.redis),
            "h2load": _children_cpu_seconds(),
        }

    async def measure(self, target: Target, rate: float | None = None) -> Run:
        """One DURATION_S run through `target`'s Envoy (closed loop, or paced at `rate`),
        CPU read before and after."""
        before = await self.cpu_snapshot(target)
        succeeded, failed, p99 = h2load(
            f"{target.edge.url}{GET_ME}", self.body, self.token, DURATION_S, rate
        )
        after = await self.cpu_snapshot(target)
        return _run(before, after, succeeded, failed, p99)

    async def idle(self, target: Target) -> list[float]:
        """Each replica's CPU per second with no load (background loops), for reference."""
        before = await self.cpu_snapshot(target)
        await asyncio.sleep(IDLE_S)
        after = await self.cpu_snapshot(target)
        return [
            (b - a) / IDLE_S
            for a, b in zip(_floats(before["replicas"]), _floats(after["replicas"]), strict=True)
        ]


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _floats(value: object) -> list[float]:
    assert isinstance(value, list)
    return [float(v) for v in value]


def _pg(value: object) -> dict[int, float]:
    assert isinstance(value, dict)
    return {int(k): float(v) for k, v in value.items()}


def _scalar(value: object) -> float:
    assert isinstance(value, float)
    return value


def _run(
    before: dict[str, object],
    after: dict[str, object],
    succeeded: int,
    failed: int,
    p99: float,
) -> Run:
    per_replica = [
        b - a for a, b in zip(_floats(before["replicas"]), _floats(after["replicas"]), strict=True)
    ]
    pg_before, pg_after = _pg(before["postgres"]), _pg(after["postgres"])
    # A backend that appeared during the run (the pool grew) started from 0 CPU.
    postgres = sum(cpu - pg_before.get(pid, 0.0) for pid, cpu in pg_after.items())
    cpu = {
        "replicas": sum(per_replica),
        "envoy": _scalar(after["envoy"]) - _scalar(before["envoy"]),
        "postgres": postgres,
        "redis": _scalar(after["redis"]) - _scalar(before["redis"]),
        "h2load": _scalar(after["h2load"]) - _scalar(before["h2load"]),
    }
    return Run(succeeded / DURATION_S, p99, succeeded, failed, cpu, per_replica)


async def register(address: str) -> str:
    """Register the bench user on one replica; its access token."""
    async with OptixClient(address) as client:
        await client.register(EMAIL, PASSWORD)
        token = client.tokens.session.access_token
    assert token is not None
    return token


def check_get_me(address: str, token: str) -> None:
    """One GetMe with a real gRPC client (h2load sees only HTTP 200, not grpc-status)."""
    with grpc.insecure_channel(address) as channel:
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(GET_ME)
        answer = call(
            user_service_pb2.GetMeRequest().SerializeToString(),
            metadata=(("authorization", f"Bearer {token}"),),
            timeout=10,
        )
    assert user_service_pb2.GetMeResponse.FromString(answer).user.email == EMAIL


def _edge(stack: ExitStack, var: Path, name: str, upstreams: Sequence[Replica]) -> Edge:
    listen, admin = free_port(), free_port()
    upstream = ",".join(r.address for r in upstreams)
    env = envoy_env(upstream, listen, admin, **UNLIMITED)
    config = render_envoy_config(var / f"envoy-{name}.yaml", env)
    edge = stack.enter_context(envoy(config, listen, admin, concurrency=1))
    wait_healthy(edge, [r.address for r in upstreams])
    return edge


def _median(runs: Sequence[Run], roles: Sequence[str]) -> float:
    return statistics.median(sum(r.per_request_us(k) for k in roles) for r in runs)


def _lines(name: str, runs: Sequence[Run]) -> str:
    best = max(runs, key=lambda r: r.qps)
    cpu = "  ".join(f"{role} {_median(runs, (role,)):4.0f}" for role in ROLES)
    return (
        f"  {name:<24} {best.qps:6.0f} req/s  p99 {best.p99_ms:6.1f} ms"
        f"  ({best.succeeded} ok, {best.failed} failed)\n"
        f"  {'':<24} CPU µs/request: {cpu}"
    )


async def _bench(var: Path) -> Report:
    async with (
        fresh_database_url("postgres", var) as url,
        redis_namespace() as (redis_url, prefix),
    ):
        await asyncio.to_thread(migrate, url)
        shared = {
            "OPTIX_DATABASE_URL": url,
            "OPTIX_REDIS_URL": redis_url,
            "OPTIX_REDIS_PREFIX": prefix,
            "OPTIX_AUTH_KEYS_DIR": str(var / "keys"),
        }
        redis = Redis.from_url(redis_url)
        with ExitStack() as stack:
            stack.callback(redis.close)
            # One after the other: the first creates the shared signing key.
            a = stack.enter_context(replica("a", var, shared))
            b = stack.enter_context(replica("b", var, shared))
            token = await register(a.address)
            check_get_me(b.address, token)  # B verifies what A signed, reads what A wrote
            one = Target("one replica", _edge(stack, var, "one", [a]), [a])
            two = Target("two replicas", _edge(stack, var, "two", [a, b]), [a, b])
            body = grpc_frame(user_service_pb2.GetMeRequest().SerializeToString())
            bench = Bench(make_url(url).database or "", redis, token, body)
            for target in (one, two):
                check_get_me(target.edge.address, token)
                # Untimed: fills the connection pools and Envoy's upstream connections.
                h2load(f"{target.edge.url}{GET_ME}", body, token, WARMUP_S)
            report = Report(idle=await bench.idle(two))
            before = host_counts(two.edge)
            for _ in range(ROUNDS):
                # Alternating, so machine noise falls on both alike.
                for target, runs in ((one, report.one), (two, report.two)):
                    runs.append(await bench.measure(target))
            # The same load per replica for both, well below what a core carries.
            report.rate = PACED_FRACTION * max(r.qps for r in report.one)
            for _ in range(ROUNDS):
                for target, runs in ((one, report.paced_one), (two, report.paced_two)):
                    rate = report.rate * len(target.replicas)
                    runs.append(await bench.measure(target, rate))
            after = host_counts(two.edge)
            report.split = [after.get(r.address, 0) - before.get(r.address, 0) for r in (a, b)]
    return report


@dataclass
class Report:
    """The runs of both targets, closed loop and paced, and what the replicas did at rest."""

    idle: list[float]
    one: list[Run] = field(default_factory=list)
    two: list[Run] = field(default_factory=list)
    rate: float = 0.0
    paced_one: list[Run] = field(default_factory=list)
    paced_two: list[Run] = field(default_factory=list)
    split: list[int] = field(default_factory=list)

    def print(self) -> None:
        """The figures, then the ratios two replicas / one."""
        print(
            f"bench_scale (GetMe with a bearer token through Envoy, h2load {CONNECTIONS}x"
            f"{STREAMS_PER_CONNECTION} streams; best QPS and median CPU of {ROUNDS} interleaved"
            f" {DURATION_S} s runs; {os.cpu_count()} cores for everything)"
        )
        print(_lines("one replica", self.one))
        print(_lines("two replicas", self.two))
        print(_lines(f"one replica, {self.rate:.0f}/s", self.paced_one))
        print(_lines(f"two replicas, {2 * self.rate:.0f}/s", self.paced_two))
        shares = [
            statistics.median(r.per_replica[i] / max(sum(r.per_replica), 1e-9) for r in self.two)
            for i in (0, 1)
        ]
        print(
            f"  two replicas: Envoy sent {self.split[0]} / {self.split[1]} calls to A / B,"
            f" CPU share {shares[0]:.0%} / {shares[1]:.0%}; at rest each replica used "
            + " / ".join(f"{c * 1000:.1f}" for c in self.idle)
            + " ms of CPU a second"
        )
        best_one, best_two = (max(r.qps for r in runs) for runs in (self.one, self.two))
        print(
            f"  two/one QPS, closed loop: {best_two / best_one:4.2f}x"
            f" (bounded: {os.cpu_count()} cores shared with h2load, Envoy and PostgreSQL)"
        )
        for label, one, two in (
            ("closed loop", self.one, self.two),
            (f"{self.rate:.0f}/s a replica", self.paced_one, self.paced_two),
        ):
            parts = []
            for roles, what in ((("replicas",), "replicas"), (SERVING, "replicas+Envoy+PG")):
                c1, c2 = _median(one, roles), _median(two, roles)
                parts.append(f"{what} {c2 / c1:4.2f}x ({c1:.0f} -> {c2:.0f} µs)")
            print(f"  two/one CPU/request, {label + ':':<17} " + ", ".join(parts))


def probe_quote(index: int) -> bytes:
    """An encoded Quote with every field a simulated equity quote carries."""
    quote = quote_pb2.Quote(
        symbol=f"SIM{index:03d}",
        instrument_type=instrument_pb2.INSTRUMENT_TYPE_EQUITY,
        bid=189.99,
        ask=190.01,
        last=190.0,
        mark=190.0,
        bid_size=300,
        ask_size=400,
        volume=1_234_500,
        open=188.5,
        high=191.25,
        low=187.75,
        previous_close=188.0,
        change=2.0,
        change_percent=1.06,
        source=quote_pb2.DATA_SOURCE_SIMULATED,
        sequence=index + 1,
    )
    quote.quote_time.GetCurrentTime()
    return quote.SerializeToString()


def _subscriber_process(redis_url: str, prefix: str, conn: Connection) -> None:
    """A process that, like a replica with quote streams, subscribes to every probe channel
    through RedisPubSub and decodes each tick once; reports its CPU and count on request."""
    asyncio.run(_subscribe_all(redis_url, prefix, conn))


async def _subscribe_all(redis_url: str, prefix: str, conn: Connection) -> None:
    pubsub = RedisPubSub(AsyncRedis.from_url(redis_url), prefix)
    received = [0]
    subscribed = asyncio.Event()
    pending = [PROBE_CHANNELS]

    async def listen(channel: str) -> None:
        async with pubsub.subscribe(channel) as messages:
            pending[0] -= 1
            if not pending[0]:
                subscribed.set()
            async for payload in messages:
                tick_from_payload(payload)
                received[0] += 1

    tasks = [asyncio.create_task(listen(f"scale.q.{i}")) for i in range(PROBE_CHANNELS)]
    await subscribed.wait()
    loop = asyncio.get_running_loop()
    conn.send("ready")
    while await loop.run_in_executor(None, conn.recv) != "stop":
        conn.send((time.process_time(), received[0]))
    for task in tasks:
        task.cancel()
    await pubsub.close()


@dataclass(frozen=True)
class Probe:
    """CPU per published message: Redis's, the publisher's and each subscriber's."""

    subscribers: int
    published: int
    redis_us: float
    publisher_us: float
    subscriber_us: list[float]


async def _publish(redis_url: str, prefix: str) -> tuple[int, float]:
    pubsub = RedisPubSub(AsyncRedis.from_url(redis_url), prefix)
    payloads = [probe_quote(i) for i in range(PROBE_CHANNELS)]
    sent, began, cpu = 0, time.perf_counter(), time.process_time()
    try:
        while time.perf_counter() - began < PROBE_S:
            burst = [(sent + k) % PROBE_CHANNELS for k in range(PROBE_BURST)]
            await pubsub.publish_many([(f"scale.q.{i}", payloads[i]) for i in burst])
            sent += PROBE_BURST
            await asyncio.sleep(max(0.0, began + sent / PROBE_RATE - time.perf_counter()))
        return sent, time.process_time() - cpu
    finally:
        await pubsub.close()


def fanout_probe(redis_url: str, prefix: str, subscribers: int) -> Probe:
    """Publish for PROBE_S to `subscribers` subscribing processes; CPU per message of each."""
    context = multiprocessing.get_context("spawn")
    pipes: list[Connection] = []
    processes = []
    redis = Redis.from_url(redis_url)
    try:
        for _ in range(subscribers):
            parent, child = context.Pipe()
            process = context.Process(
                target=_subscriber_process, args=(redis_url, prefix, child), daemon=True
            )
            process.start()
            pipes.append(parent)
            processes.append(process)
        for pipe in pipes:
            assert pipe.poll(60) and pipe.recv() == "ready"
        starts = []
        for pipe in pipes:
            pipe.send("cpu")
            starts.append(pipe.recv())
        redis_before = redis_cpu_seconds(redis)
        sent, publisher_cpu = asyncio.run(_publish(redis_url, prefix))
        redis_used = redis_cpu_seconds(redis) - redis_before
        time.sleep(0.5)  # the last bursts reach the subscribers
        per_subscriber = []
        for pipe, (cpu, count) in zip(pipes, starts, strict=True):
            pipe.send("cpu")
            cpu_after, count_after = pipe.recv()
            per_subscriber.append((cpu_after - cpu) / max(count_after - count, 1) * 1e6)
    finally:
        for pipe in pipes:
            pipe.send("stop")
        for process in processes:
            process.join(15)
            if process.is_alive():
                process.kill()
        redis.close()
    return Probe(
        subscribers, sent, redis_used / sent * 1e6, publisher_cpu / sent * 1e6, per_subscriber
    )


def print_probes(alone: Probe, fanned: Probe) -> None:
    """Redis CPU per publish without and with subscribers, and what each side pays."""
    extra = (fanned.redis_us - alone.redis_us) / fanned.subscribers
    print(
        f"pub/sub probe ({PROBE_RATE}/s encoded quotes for {PROBE_S:.0f} s over {PROBE_CHANNELS}"
        f" channels, RedisPubSub both ends; Redis CPU is the shared server's, others' work too)"
    )
    print(
        f"  Redis CPU per PUBLISH: {alone.redis_us:.1f} µs with no subscriber,"
        f" {fanned.redis_us:.1f} µs with {fanned.subscribers}"
        f" ({fanned.redis_us / max(alone.redis_us, 1e-9):.2f}x; {extra:.2f} µs per delivered copy)"
    )
    received = statistics.median(fanned.subscriber_us)
    print(
        f"  publisher CPU {fanned.publisher_us:.1f} µs per message; each subscribing process "
        + " / ".join(f"{us:.1f}" for us in fanned.subscriber_us)
        + f" µs per received tick ({received / fanned.publisher_us:.2f}x the publisher's),"
        " paid by every replica for every tick of every symbol it streams"
    )


def main() -> None:
    """Start the backends, both replicas and both Envoys, run the rounds, print the ratios;
    then the pub/sub probe."""
    if shutil.which("h2load") is None:
        print("bench_scale: h2load not found (apt-get install nghttp2-client); skipped")
        return
    os.environ.setdefault("OPTIX_TEST_DATABASE_URL", LOCAL_POSTGRES)
    os.environ.setdefault("OPTIX_TEST_REDIS_URL", LOCAL_REDIS)
    with tempfile.TemporaryDirectory(prefix=f"optix-bench-scale-{uuid.uuid4().hex[:6]}-") as tmp:
        report = asyncio.run(_bench(Path(tmp)))
    report.print()
    probe_prefix = f"optix-bench-scale-{uuid.uuid4().hex[:8]}:"  # pub/sub leaves no keys
    redis_url = os.environ["OPTIX_TEST_REDIS_URL"]
    alone = fanout_probe(redis_url, probe_prefix, 0)
    print_probes(alone, fanout_probe(redis_url, probe_prefix, PROBE_SUBSCRIBERS))


if __name__ == "__main__":
    main()
