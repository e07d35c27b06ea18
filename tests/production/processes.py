"""Real processes and proxies for the production fault tests: `optix serve` replicas a test can
stop, kill and start again on the same port, a private Redis it may kill, a PostgreSQL proxy it
may cut (on a thread of its own, so load on the test's event loop never slows the database
traffic), grpc.health.v1 as seen from outside, and the Envoy edge's admin view of its hosts."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from grpc_health.v1 import health_pb2, health_pb2_grpc
from redis.asyncio import Redis

from optix_server.infra.auth.keys import private_key_pem
from tests.e2e.stack import REPO, LogPump
from tests.support.tcp_proxy import TcpProxy

T = TypeVar("T")

OPTIX = (sys.executable, "-m", "optix_server.cli")
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
# What a probe of a port nobody listens on yet (or any more) hears.
REFUSED = "refused"
# Channel options for probes: notice a listener within ~100 ms of it appearing.
PROBE_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.min_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 100),
)


def shared_secrets() -> dict[str, str]:
    """The keys every replica must share (JWT signing key, password pepper, sealing keys),
    made here and thrown away with the test."""

    def key() -> str:
        return base64.b64encode(os.urandom(32)).decode()

    return {
        "OPTIX_AUTH_SIGNING_KEYS_PEM": private_key_pem(Ed25519PrivateKey.generate()).decode(),
        "OPTIX_USER_PEPPER": key(),
        "OPTIX_BROKERAGE_TOKEN_KEYS": f"k1:{key()}",
        "OPTIX_ALERT_SECRET_KEY": key(),
    }


def child_env(env: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without any OPTIX_* variable, plus `env`: a child sees only
    the settings the test gave it."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("OPTIX_")},
        **env,
    }


def run_optix(
    args: Sequence[str], env: Mapping[str, str], timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """Run `python -m optix_server.cli ARGS` to completion (for `migrate` and refusals)."""
    return subprocess.run(
        [*OPTIX, *args],
        env=child_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=REPO,
    )


def spawn_serve(port: int, env: Mapping[str, str]) -> subprocess.Popen[str]:
    """Start `optix serve --port PORT` with `env` (stderr piped, as text)."""
    return subprocess.Popen(
        [*OPTIX, "serve", "--port", str(port)],
        env=child_env(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


def port_accepts(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:`port` right now."""
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class Replica:
    """One `optix serve --port N` process; start() after a stop or a kill reuses the port."""

    def __init__(
        self, name: str, port: int, env: Mapping[str, str], metrics_port: int | None = None
    ) -> None:
        self.name = name
        self.port = port
        self.metrics_port = metrics_port
        self._env = dict(env)
        self.proc: subprocess.Popen[bytes] | None = None
        self.logs = LogPump()
        self.started_at = 0.0
        self.starts = 0
        self.stop_seconds = 0.0

    @property
    def address(self) -> str:
        """host:port of its gRPC server."""
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """Whether its process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Spawn the process (its output is kept in `logs`)."""
        assert not self.running, f"{self.name} is already running"
        env = {**self._env, "OPTIX_PORT": str(self.port)}
        if self.metrics_port is not None:
            env["OPTIX_METRICS_PORT"] = str(self.metrics_port)
        self.logs = LogPump()
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            [*OPTIX, "serve", "--port", str(self.port)],
            env=child_env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        self.starts += 1
        threading.Thread(target=self.logs.run, args=(self.proc.stdout,), daemon=True).start()

    def signal(self, sig: signal.Signals) -> None:
        """Send `sig` to the process, if alive."""
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(sig)

    async def wait_exit(self, within: float) -> int:
        """Its exit status, waiting up to `within` s (AssertionError with its logs if not)."""
        assert self.proc is not None
        try:
            return await asyncio.to_thread(self.proc.wait, within)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.name} did not exit within {within} s:\n{self.logs.tail()}"
            ) from None

    async def stop(self, within: float = 30.0, *, quick: bool = False) -> None:
        """SIGTERM and wait; `quick` sends a second SIGTERM, which cuts the drain short."""
        if not self.running:
            return
        self.signal(signal.SIGTERM)
        if quick:
            await asyncio.sleep(0.2)
            self.signal(signal.SIGTERM)
        started = time.monotonic()
        try:
            await self.wait_exit(within)
        except AssertionError:
            print(f"\n{self.name} ignored SIGTERM for {within} s; killing it:\n{self.logs.tail()}")
            self.signal(signal.SIGKILL)
            await self.wait_exit(10)
        self.stop_seconds = time.monotonic() - started

    async def wait_serving(
        self, within: float = 90.0, services: Sequence[str] = ("",)
    ) -> dict[str, HealthTimeline]:
        """Probe its health from now until `services` all answer SERVING; the timelines (its
        logs in the AssertionError when it never does)."""
        try:
            return await probe_until(
                self.address,
                self.started_at,
                "SERVING",
                within,
                services=services,
                alive=lambda: self.running,
            )
        except AssertionError as error:
            raise AssertionError(f"{self.name}: {error}\n{self.logs.tail()}") from None

    async def metric(self, name: str) -> float | None:
        """The value of metric `name` (no labels) from its /metrics; None when not served."""
        if self.metrics_port is None:
            return None
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        try:
            text = await asyncio.to_thread(_http_get, url)
        except (OSError, urllib.error.URLError):
            return None
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == name:
                return float(parts[1])
        return None

    def logged(self, text: str) -> int:
        """How many of its log lines (since its last start) contain `text`."""
        return sum(text in line for line in list(self.logs.lines))


def _http_get(url: str, timeout: float = 2.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body: bytes = response.read()
    return body.decode()


@dataclass
class HealthTimeline:
    """What one grpc.health.v1 Check target answered, in order: (seconds since the process
    started, SERVING / NOT_SERVING / refused / another code's name)."""

    answers: list[tuple[float, str]] = field(default_factory=list)

    def first(self, answer: str) -> float | None:
        """When `answer` was first heard (seconds since start), if ever."""
        return next((t for t, a in self.answers if a == answer), None)

    def counts(self) -> Counter[str]:
        """How often each answer was heard."""
        return Counter(answer for _, answer in self.answers)

    def unexpected(self, allowed: Sequence[str]) -> list[tuple[float, str]]:
        """The answers outside `allowed`."""
        return [(t, a) for t, a in self.answers if a not in allowed]


def probe_channel(address: str) -> grpc.aio.Channel:
    """A channel for health probes that notices a new listener quickly."""
    return grpc.aio.insecure_channel(address, options=list(PROBE_OPTIONS))


async def check_health(
    stub: health_pb2_grpc.HealthStub, service: str = "", deadline: float = 1.0
) -> str:
    """One Check: the status name, `refused` when nothing accepted the connection, else the
    error code's name."""
    try:
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=deadline)
    except grpc.aio.AioRpcError as error:
        # "failed to connect to all addresses ... Connection refused": nothing listens.
        if error.code() == grpc.StatusCode.UNAVAILABLE and "connect" in (error.details() or ""):
            return REFUSED
        return error.code().name
    name: str = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return name


async def probe_until(
    address: str,
    started_at: float,
    until: str,
    within: float,
    *,
    services: Sequence[str] = ("",),
    interval: float = 0.02,
    alive: Callable[[], bool] | None = None,
) -> dict[str, HealthTimeline]:
    """Poll Check for each of `services` from now until every one answered `until` (each
    round asks them all); a timeline per service. AssertionError after `within` s, or as soon
    as `alive` says the process is gone."""
    timelines = {service: HealthTimeline() for service in services}
    deadline = time.monotonic() + within
    async with probe_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if alive is not None and not alive():
                raise AssertionError(f"the process serving {address} exited while probed")
            answers = [await check_health(stub, service) for service in services]
            now = time.monotonic() - started_at
            for service, answer in zip(services, answers, strict=True):
                timelines[service].answers.append((now, answer))
            if all(answer == until for answer in answers):
                return timelines
            await asyncio.sleep(interval)
    seen = {service or "<overall>": dict(t.counts()) for service, t in timelines.items()}
    raise AssertionError(f"{address} never answered {until} within {within} s: {seen}")


class PrivateRedis:
    """A redis-server of the test's own on a fixed port, so it can be killed and restarted
    empty without touching the Redis other tests share."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """redis:// URL of its database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    async def start(self, within: float = 10.0) -> None:
        """Start it empty (no persistence) and wait until it answers PING."""
        self.proc = self._spawn()
        client = Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + within
        try:
            while True:
                try:
                    await client.ping()
                    return
                except Exception:
                    if time.monotonic() > deadline or self.proc.poll() is not None:
                        raise AssertionError(f"redis-server on {self.port} did not start") from None
                    await asyncio.sleep(0.05)
        finally:
            await client.aclose()

    async def kill(self) -> None:
        """SIGKILL it (connections drop at once, every key is gone)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            await asyncio.to_thread(self.proc.wait, 10)

    @property
    def running(self) -> bool:
        """Whether it is alive."""
        return self.proc is not None and self.proc.poll() is None


class ThreadedProxy:
    """A TcpProxy (start()/cut(), same port after a cut) running on an event loop of its own
    thread: the database traffic of both replicas goes through it, and the test's own loop
    (busy with the load) must not delay it."""

    def __init__(self, host: str, port: int) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._proxy = TcpProxy(host, port)
        self.up = False

    @property
    def port(self) -> int:
        """The port it listens on (0 before the first start)."""
        return self._proxy.port

    async def _on_loop(self, work: Coroutine[Any, Any, T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(work, self._loop)
        return await asyncio.wrap_future(future)

    async def start(self) -> None:
        """Listen (again, on the same port)."""
        await self._on_loop(self._proxy.start())
        self.up = True

    async def cut(self) -> None:
        """Stop listening and drop every connection, as a stopped PostgreSQL does."""
        self.up = False
        await self._on_loop(self._proxy.cut())

    async def close(self) -> None:
        """Cut and stop the thread."""
        await self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        await asyncio.to_thread(self._thread.join, 5)


async def edge_health_flags(admin_url: str) -> dict[str, dict[str, str]]:
    """Envoy's view of its hosts: cluster -> host:port -> health flags ("healthy", or e.g.
    "/failed_active_hc/failed_outlier_check"), from the admin /clusters page."""
    text = await asyncio.to_thread(_http_get, f"{admin_url}/clusters")
    flags: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        parts = line.split("::")
        if len(parts) == 4 and parts[2] == "health_flags" and parts[0].startswith("optix_"):
            flags.setdefault(parts[0], {})[parts[1]] = parts[3]
    return flags


async def wait_edge_sees(
    admin_url: str, address: str, *, healthy: bool, within: float, interval: float = 0.05
) -> float:
    """Wait until every cluster of the edge has `address` healthy (or, with healthy=False,
    out of rotation in every one); the seconds it took. AssertionError after `within` s."""
    started = time.monotonic()
    last: dict[str, str] = {}
    while time.monotonic() - started < within:
        flags = await edge_health_flags(admin_url)
        last = {cluster: hosts.get(address, "absent") for cluster, hosts in flags.items()}
        if last and all((state == "healthy") == healthy for state in last.values()):
            return time.monotonic() - started
        await asyncio.sleep(interval)
    want = "healthy" if healthy else "out of rotation"
    raise AssertionError(f"the edge never saw {address} {want} within {within} s: {last}")
