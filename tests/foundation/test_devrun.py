"""`make run`'s devrun stops once and frees its ports, however many signals arrive at once."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from optix_server.devrun import (
    DEFAULT_TRUSTED_PROXIES,
    Shutdown,
    child,
    edge_url,
    page_config,
    route_stop_signals,
    serve_env,
    static_site,
)
from tests.e2e.stack import BIN, REPO, LogPump, free_port, wait_until_serving

START_TIMEOUT_S = 60.0
EXIT_TIMEOUT_S = 20.0
# Many signals back to back: a signal landing while the previous handler still ran is what
# deadlocked the old handler (threading.Event.set() inside Event.set()).
BURST = 1000
READY_LINE = "Ctrl-C stops all"
STOPPING_LINE = "devrun: stopping"


def _bindable(port: int) -> bool:
    """True when a listener could take `port` now (as the next `make run` would)."""
    with socket.socket() as sock:
        # Like the real servers: TIME_WAIT leftovers are fine, a socket still listening is not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
        except OSError:
            return False
    return True


def _burst(pid: int) -> None:
    for n in range(BURST):
        os.kill(pid, signal.SIGTERM if n % 2 else signal.SIGINT)


def _is_serving_event(line: str) -> bool:
    try:
        event = json.loads(line)
    except ValueError:
        return False
    return isinstance(event, dict) and event.get("event") == "serving"


def _wait_for_lines(logs: LogPump, timeout: float, *wanted: Callable[[str], bool]) -> None:
    """Read devrun's output until every `wanted` predicate has matched a line, in any order."""
    missing = list(wanted)
    while missing:
        try:
            line = logs.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"devrun never got there:\n{logs.tail()}") from None
        if not line:
            raise AssertionError(f"devrun exited early:\n{logs.tail()}")
        missing = [match for match in missing if not match(line)]


def _says(fragment: str) -> Callable[[str], bool]:
    return lambda line: fragment in line


@pytest.fixture
def devrun_ports() -> dict[str, int]:
    """Ports of its own for one devrun, so it never clashes with a real `make run`."""
    return {
        "OPTIX_PORT": free_port(),
        "OPTIX_DEMO_PORT": free_port(),
        "OPTIX_ENVOY_LISTEN_PORT": free_port(),
        "OPTIX_ENVOY_ADMIN_PORT": free_port(),
    }


@contextlib.contextmanager
def _devrun(
    var_dir: Path, ports: dict[str, int]
) -> Iterator[tuple[subprocess.Popen[bytes], LogPump]]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("OPTIX_ENVOY_")
        and key not in {"OPTIX_DATABASE_URL", "OPTIX_REDIS_URL"}
    }
    env.update({key: str(port) for key, port in ports.items()})
    env.update(
        OPTIX_VAR_DIR=str(var_dir),
        OPTIX_ENVOY_UPSTREAM_DEFAULT=f"127.0.0.1:{ports['OPTIX_PORT']}",
        OPTIX_SHUTDOWN_GRACE_SECONDS="1",
        OPTIX_LOG_FORMAT="json",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "optix_server.devrun"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        # Its own process group: whatever happens, the cleanup below reaches every child.
        start_new_session=True,
    )
    logs = LogPump()
    threading.Thread(target=logs.run, args=(proc.stdout,), daemon=True).start()
    try:
        yield proc, logs
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


@pytest.mark.skipif(not (BIN / "envoy").exists(), reason="envoy is not installed in the venv")
def test_signal_burst_stops_devrun_and_frees_its_ports(
    tmp_path: Path, devrun_ports: dict[str, int]
) -> None:
    with _devrun(tmp_path / "var", devrun_ports) as (proc, logs):
        _wait_for_lines(logs, START_TIMEOUT_S, _says(READY_LINE), _is_serving_event)
        # Through Envoy too: it is up and routes to `optix serve`.
        wait_until_serving(f"127.0.0.1:{devrun_ports['OPTIX_ENVOY_LISTEN_PORT']}", logs, proc)
        # The demo page learns the moved Envoy port from the server that serves it.
        assert (REPO / "clients" / "web" / "dist" / "index.html").exists(), "run `make web`"
        config = f"http://127.0.0.1:{devrun_ports['OPTIX_DEMO_PORT']}/config.json"
        with urllib.request.urlopen(config, timeout=10) as reply:
            edge = f"http://127.0.0.1:{devrun_ports['OPTIX_ENVOY_LISTEN_PORT']}"
            assert json.load(reply) == {"edge": edge}

        _burst(proc.pid)
        _wait_for_lines(logs, EXIT_TIMEOUT_S, _says(STOPPING_LINE))
        # And another burst while the stop path runs: it must still run once, to the end.
        _burst(proc.pid)
        try:
            code = proc.wait(EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"devrun hung while stopping:\n{logs.tail()}") from None

        assert code == 0, logs.tail()
        with pytest.raises(ProcessLookupError):
            os.killpg(proc.pid, 0)  # no child outlived devrun
        taken = [name for name, port in devrun_ports.items() if not _bindable(port)]
        assert not taken, f"still bound after devrun exited: {taken}\n{logs.tail()}"


def test_stop_path_runs_once_to_the_end_under_signals(tmp_path: Path) -> None:
    shutdown = Shutdown()
    restore = route_stop_signals(shutdown)
    sending = threading.Event()
    done_sending = threading.Event()

    def keep_signalling() -> None:
        sending.set()
        while not done_sending.is_set():
            os.kill(os.getpid(), signal.SIGTERM)

    sender = threading.Thread(target=keep_signalling, name="signal-sender", daemon=True)
    stops: list[str] = []
    try:
        with ExitStack() as stack:
            sleeper = stack.enter_context(
                child("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], shutdown)
            )
            stack.callback(stops.append, "stopped")
            site = stack.enter_context(static_site(tmp_path))
            port = int(site.server.server_address[1])
            _burst(os.getpid())
            shutdown.wait()
            sender.start()
            assert sending.wait(5)
            # Leaving the block runs the stop path with SIGTERMs arriving all along.
    finally:
        done_sending.set()
        if sender.is_alive():
            sender.join(5)
        # Only now: every signal sent has been handled, none can meet the default action.
        restore()
        shutdown.close()
    assert stops == ["stopped"]
    assert shutdown.stopping
    assert sleeper.proc.returncode is not None
    assert _bindable(port)


def test_serve_child_trusts_loopback_proxies_unless_configured() -> None:
    assert serve_env({"HOME": "/h"}) == {
        "HOME": "/h",
        "OPTIX_TRUSTED_PROXIES": DEFAULT_TRUSTED_PROXIES,
        "OPTIX_ACCESS_LOG": "all",
    }
    assert (
        serve_env({"OPTIX_TRUSTED_PROXIES": "10.0.0.0/8"})["OPTIX_TRUSTED_PROXIES"] == "10.0.0.0/8"
    )


def test_static_site_serves_the_page_config_it_is_given(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<!doctype html><title>demo</title>")
    with static_site(tmp_path, config=page_config("http://127.0.0.1:18080")) as site:
        with urllib.request.urlopen(f"{site.url}config.json?t=1", timeout=10) as reply:
            assert reply.headers["Content-Type"] == "application/json"
            assert reply.headers["Cache-Control"] == "no-store"
            assert json.load(reply) == {"edge": "http://127.0.0.1:18080"}
        with urllib.request.urlopen(site.url, timeout=10) as reply:
            assert b"<title>demo</title>" in reply.read()
    # Without a config the page's server has none (the page then says it guesses).
    with static_site(tmp_path) as site, pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{site.url}config.json", timeout=10)
    assert refused.value.code == 404


@pytest.mark.parametrize(
    ("env", "url"),
    [
        ({}, "http://127.0.0.1:8080"),
        ({"OPTIX_ENVOY_LISTEN_PORT": "9090"}, "http://127.0.0.1:9090"),
        (
            {"OPTIX_ENVOY_LISTEN_HOST": "0.0.0.0", "OPTIX_ENVOY_LISTEN_PORT": "81"},
            "http://127.0.0.1:81",
        ),
        ({"OPTIX_ENVOY_LISTEN_HOST": "::1"}, "http://[::1]:8080"),
        ({"OPTIX_ENVOY_LISTEN_HOST": "192.0.2.7"}, "http://192.0.2.7:8080"),
    ],
)
def test_edge_url_follows_the_envoy_settings(env: dict[str, str], url: str) -> None:
    assert edge_url(env) == url
