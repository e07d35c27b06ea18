"""Real processes for end-to-end tests: `optix serve` on port 0 and Envoy on free ports."""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from optix_server.devrun import StaticSite, page_config, static_site

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ENVOY_DIR = REPO / "envoy"
DEMO_DIR = REPO / "clients" / "web" / "dist"
START_TIMEOUT_S = 60.0
REQUEST_MESSAGE_TIMEOUT_S = 2.0


def free_port() -> int:
    """A port that was free a moment ago (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LogPump:
    """Drains a child's output into memory (a full pipe would block the child)."""

    lines: list[str] = field(default_factory=list)
    events: queue.Queue[str] = field(default_factory=queue.Queue)

    def run(self, stream: object) -> None:
        """Read until EOF; every line is also offered to whoever waits on `events`."""
        for raw in stream:  # type: ignore[attr-defined]
            line = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
            self.lines.append(line)
            self.events.put(line)
        self.events.put("")  # EOF marker

    def tail(self, n: int = 40) -> str:
        """The last lines, for failure messages."""
        return "".join(self.lines[-n:])


def _pump(proc: subprocess.Popen[bytes]) -> LogPump:
    pump = LogPump()
    threading.Thread(target=pump.run, args=(proc.stdout,), daemon=True).start()
    return pump


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@dataclass
class Process:
    """A started child process with its captured output."""

    proc: subprocess.Popen[bytes]
    logs: LogPump
    address: str


@contextmanager
def optix_server(var_dir: Path, env: Mapping[str, str] | None = None) -> Iterator[Process]:
    """`optix serve --port 0` with SQLite under `var_dir`; yields once it logs its address."""
    child_env = {
        **os.environ,
        "OPTIX_LOG_FORMAT": "json",
        "OPTIX_VAR_DIR": str(var_dir),
        "OPTIX_SHUTDOWN_GRACE_SECONDS": "1",
        # Calls that never send their request end after this (default 10 s): tests wait less.
        "OPTIX_REQUEST_MESSAGE_TIMEOUT_S": str(REQUEST_MESSAGE_TIMEOUT_S),
        # Envoy (on loopback) appends the client it saw to x-forwarded-for: trust it to, as a
        # deployment trusts its edge, so per-address limits count clients, not the edge.
        "OPTIX_TRUSTED_PROXIES": "127.0.0.1/32,::1/128",
        **(env or {}),
    }
    child_env.pop("OPTIX_DATABASE_URL", None)
    proc = subprocess.Popen(
        [str(BIN / "optix"), "serve", "--host", "127.0.0.1", "--port", "0"],
        env=child_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )
    logs = _pump(proc)
    try:
        address = _wait_for_serving(logs)
        yield Process(proc, logs, address)
    finally:
        _stop(proc)


def _wait_for_serving(logs: LogPump) -> str:
    while True:
        try:
            line = logs.events.get(timeout=START_TIMEOUT_S)
        except queue.Empty:
            raise AssertionError(f"optix serve did not start:\n{logs.tail()}") from None
        if not line:
            raise AssertionError(f"optix serve exited:\n{logs.tail()}")
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("event") == "serving":
            return str(event["address"])


def render_envoy_config(out: Path, env: Mapping[str, str]) -> Path:
    """Run the generator (`python -m optix_edge`) with OPTIX_ENVOY_* `env`; returns `out`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OPTIX_ENVOY_")}
    clean["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ENVOY_DIR), clean.get("PYTHONPATH")]))
    subprocess.run(
        [sys.executable, "-m", "optix_edge", "--out", str(out)],
        env={**clean, **env},
        check=True,
        cwd=REPO,
        timeout=120,
    )
    return out


def envoy_env(upstream: str, listen_port: int, admin_port: int, **extra: str) -> dict[str, str]:
    """OPTIX_ENVOY_* variables pointing every cluster at `upstream`."""
    return {
        "OPTIX_ENVOY_UPSTREAM_DEFAULT": upstream,
        "OPTIX_ENVOY_LISTEN_PORT": str(listen_port),
        "OPTIX_ENVOY_ADMIN_PORT": str(admin_port),
        **extra,
    }


@dataclass
class Edge:
    """A running Envoy: its listener address and admin URL."""

    process: Process
    admin_url: str

    @property
    def address(self) -> str:
        """host:port of the listener (grpc-web and native gRPC)."""
        return self.process.address

    @property
    def url(self) -> str:
        """http://host:port of the listener."""
        return f"http://{self.process.address}"


@contextmanager
def envoy(config: Path, listen_port: int, admin_port: int, concurrency: int = 2) -> Iterator[Edge]:
    """Start Envoy with `config`; yields once a health check through it answers."""
    proc = subprocess.Popen(
        [
            str(BIN / "envoy"),
            "-c",
            str(config),
            "--disable-hot-restart",
            "--log-level",
            "warn",
            "--concurrency",
            str(concurrency),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )
    logs = _pump(proc)
    address = f"127.0.0.1:{listen_port}"
    try:
        wait_until_serving(address, logs, proc)
        yield Edge(Process(proc, logs, address), f"http://127.0.0.1:{admin_port}")
    finally:
        _stop(proc)


def wait_until_serving(address: str, logs: LogPump, proc: subprocess.Popen[bytes]) -> None:
    """Block until grpc.health.v1 answers SERVING at `address` (gRPC waits for the port)."""
    options = [("grpc.initial_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 500)]
    with grpc.insecure_channel(address, options=options) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(
                health_pb2.HealthCheckRequest(), timeout=START_TIMEOUT_S, wait_for_ready=True
            )
        except grpc.RpcError as error:
            state = "exited" if proc.poll() is not None else "running"
            raise AssertionError(
                f"no health answer via {address} ({state}): {error}\n{logs.tail()}"
            ) from None
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


@contextmanager
def demo_page(edge_url: str | None) -> Iterator[StaticSite]:
    """The built demo app (clients/web/dist) on a free port, with a config.json naming
    `edge_url` as `make run` serves it; None serves no config.json (a plain file server)."""
    config = None if edge_url is None else page_config(edge_url)
    with static_site(DEMO_DIR, config=config) as site:
        yield site
