"""Login load vs. a cheap RPC: p99 of GetJwks while 20 logins/s (bcrypt cost 12) run, as a ratio
to its p99 with no logins. The server runs in its own process; logins come from a second
process, so the probing client measures the server and not its own load generator. Idle and
loaded phases alternate, so background noise on the machine hits both sides alike."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from optix.user.v1 import user_service_pb2, user_service_pb2_grpc

LOGINS_PER_SECOND = 20
PROBES_PER_SECOND = 100
ROUNDS = 4
IDLE_SECONDS = 3.0
LOADED_SECONDS = 5.0
EMAIL = "bench@example.com"
PASSWORD = "a long and unusual bench passphrase"
MS = 1000.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_server(var_dir: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "OPTIX_VAR_DIR": var_dir,
        "OPTIX_SERVICES": "user",
        "OPTIX_PORT": str(port),
        "OPTIX_LOG_LEVEL": "WARNING",
        "OPTIX_USER_BCRYPT_COST": "12",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "optix_server.cli", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _wait_serving(channel: grpc.aio.Channel, server: subprocess.Popen[bytes]) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"server exited with status {server.returncode}")
        try:
            reply = await health.Check(
                health_pb2.HealthCheckRequest(service="optix.user.v1.UserService"),
                timeout=1,
                wait_for_ready=True,
            )
        except grpc.aio.AioRpcError:
            continue
        if reply.status == health_pb2.HealthCheckResponse.SERVING:
            return
    raise TimeoutError("server did not become SERVING")


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- the login load process -----------------------------------------------------------------


@dataclass
class LoginStats:
    """Outcomes of one loaded phase."""

    ok: list[float] = field(default_factory=list)
    busy: int = 0
    failed: int = 0


async def _one_login(stub: user_service_pb2_grpc.UserServiceAsyncStub, stats: LoginStats) -> None:
    began = time.perf_counter()
    try:
        await stub.Login(user_service_pb2.LoginRequest(email=EMAIL, password=PASSWORD), timeout=30)
        stats.ok.append(time.perf_counter() - began)
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
            stats.busy += 1
        else:
            stats.failed += 1


async def _login_load(address: str, seconds: float, ready: Event) -> LoginStats:
    stats = LoginStats()
    async with grpc.aio.insecure_channel(address) as channel:
        await asyncio.wait_for(channel.channel_ready(), 30)
        stub = user_service_pb2_grpc.UserServiceStub(channel)
        ready.set()
        tasks: list[asyncio.Task[None]] = []
        interval = 1 / LOGINS_PER_SECOND
        start = next_at = time.perf_counter()
        while time.perf_counter() - start < seconds:
            # Open loop: a new login every 50 ms whether or not earlier ones have finished.
            tasks.append(asyncio.create_task(_one_login(stub, stats)))
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        await asyncio.gather(*tasks)
    return stats


def _login_process(
    address: str, seconds: float, ready: Event, results: multiprocessing.Queue[LoginStats]
) -> None:
    results.put(asyncio.run(_login_load(address, seconds, ready)))


# --- the probing client ------------------------------------------------------------------------


async def _probe(stub: user_service_pb2_grpc.UserServiceAsyncStub, seconds: float) -> list[float]:
    latencies: list[float] = []
    interval = 1 / PROBES_PER_SECOND
    start = next_at = time.perf_counter()
    while time.perf_counter() - start < seconds:
        began = time.perf_counter()
        await stub.GetJwks(user_service_pb2.GetJwksRequest(), timeout=10)
        latencies.append(time.perf_counter() - began)
        next_at += interval
        # Paced, not closed-loop: the probe measures latency without becoming load itself.
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    return latencies


async def _loaded_phase(
    stub: user_service_pb2_grpc.UserServiceAsyncStub, address: str, total: LoginStats
) -> list[float]:
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    results: multiprocessing.Queue[LoginStats] = ctx.Queue()
    process = ctx.Process(target=_login_process, args=(address, LOADED_SECONDS, ready, results))
    process.start()
    loop = asyncio.get_running_loop()
    if not await loop.run_in_executor(None, ready.wait, 60):
        raise TimeoutError("login load process did not start")
    # Let the bcrypt queue fill before measuring: the steady state is what matters.
    await _probe(stub, 0.5)
    latencies = await _probe(stub, LOADED_SECONDS - 1.0)
    stats = await loop.run_in_executor(None, results.get, True, 60)
    await loop.run_in_executor(None, process.join, 30)
    total.ok += stats.ok
    total.busy += stats.busy
    total.failed += stats.failed
    return latencies


async def _run(address: str, server: subprocess.Popen[bytes]) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        await _wait_serving(channel, server)
        stub = user_service_pb2_grpc.UserServiceStub(channel)
        await stub.Register(user_service_pb2.RegisterRequest(email=EMAIL, password=PASSWORD))
        await _probe(stub, 1.0)  # warm-up, discarded
        idle: list[float] = []
        loaded: list[float] = []
        logins = LoginStats()
        for _ in range(ROUNDS):
            idle += await _probe(stub, IDLE_SECONDS)
            loaded += await _loaded_phase(stub, address, logins)
    idle_p99, loaded_p99 = _p(idle, 0.99), _p(loaded, 0.99)
    print(
        f"GetJwks idle:   n={len(idle)} p50={statistics.median(idle) * MS:.2f} ms "
        f"p99={idle_p99 * MS:.2f} ms"
    )
    print(
        f"GetJwks loaded: n={len(loaded)} p50={statistics.median(loaded) * MS:.2f} ms "
        f"p99={loaded_p99 * MS:.2f} ms"
    )
    seconds = ROUNDS * LOADED_SECONDS
    print(
        f"logins offered {LOGINS_PER_SECOND}/s at bcrypt cost 12 for {seconds:.0f} s: "
        f"ok={len(logins.ok)} ({len(logins.ok) / seconds:.1f}/s), "
        f"shed with RESOURCE_EXHAUSTED={logins.busy}, other errors={logins.failed}"
    )
    if logins.ok:
        print(
            f"login latency: p50={statistics.median(logins.ok) * MS:.0f} ms "
            f"p99={_p(logins.ok, 0.99) * MS:.0f} ms"
        )
    p50_ratio = statistics.median(loaded) / statistics.median(idle)
    print(f"ratio p50 GetJwks loaded/idle = {p50_ratio:.2f}x")
    print(f"ratio p99 GetJwks loaded/idle = {loaded_p99 / idle_p99:.2f}x (goal <= 2x)")


def main() -> None:
    """Run the benchmark and print the ratios."""
    with tempfile.TemporaryDirectory(prefix="optix-bench-login-") as var_dir:
        port = _free_port()
        server = _start_server(var_dir, port)
        try:
            asyncio.run(_run(f"127.0.0.1:{port}", server))
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


if __name__ == "__main__":
    main()
