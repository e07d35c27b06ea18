"""`make run`: all services, Envoy (grpc + grpc-web on :8080) and the demo page, stopped together.

Ctrl-C or SIGTERM stops every child cleanly; if any child dies, the others are stopped too.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any

from optix_server.infra.files import private_dir, tighten

REPO = Path.cwd()
STOP_TIMEOUT_S = 15.0
KILL_TIMEOUT_S = 5.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Envoy reaches `optix serve` over loopback in `make run`: x-forwarded-for is trusted from there.
DEFAULT_TRUSTED_PROXIES = "127.0.0.1/32,::1/128"


CONFIG_PATH = "/config.json"


class QuietHandler(SimpleHTTPRequestHandler):
    """Serves files without logging every request and without browser caching; `config`, when
    given, is served as /config.json (what the demo page reads to find the edge)."""

    def __init__(self, *args: Any, config: bytes | None = None, **kwargs: Any) -> None:
        self.config = config  # set before super().__init__, which handles the request
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        """Answer /config.json from memory, anything else from the directory."""
        if self.config is not None and self.path.split("?", 1)[0] == CONFIG_PATH:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(self.config)))
            self.end_headers()
            self.wfile.write(self.config)
            return
        super().do_GET()

    def end_headers(self) -> None:
        """Add `Cache-Control: no-store` before the headers end."""
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Silence per-request logs."""


@dataclass
class StaticSite:
    """A running static file server."""

    server: ThreadingHTTPServer

    @property
    def url(self) -> str:
        """http://host:port/ of the site."""
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/"


def page_config(edge_url: str) -> dict[str, str]:
    """What the demo page's config.json says: where the grpc-web edge is."""
    return {"edge": edge_url}


def edge_url(env: Mapping[str, str]) -> str:
    """The URL a browser on this machine reaches Envoy's listener at, from OPTIX_ENVOY_*."""
    host = env.get("OPTIX_ENVOY_LISTEN_HOST", "").strip() or "127.0.0.1"
    if host in ("0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"  # a wildcard listener is reachable on loopback
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    port = env.get("OPTIX_ENVOY_LISTEN_PORT", "").strip() or "8080"
    return f"http://{host}:{port}"


@contextmanager
def static_site(
    directory: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    config: Mapping[str, object] | None = None,
) -> Iterator[StaticSite]:
    """Serve `directory` over HTTP in a background thread (port 0: any free port), with
    `config` as /config.json when given."""
    body = None if config is None else json.dumps(dict(config)).encode()
    handler = functools.partial(QuietHandler, directory=str(directory), config=body)
    server = ThreadingHTTPServer((host, port), handler)
    thread = threading.Thread(target=server.serve_forever, name="static-site", daemon=True)
    thread.start()
    try:
        yield StaticSite(server)
    finally:
        try:
            server.shutdown()
            thread.join(5)
        finally:
            # The port is freed whatever happened above, so the next `make run` can bind it.
            server.server_close()


class Shutdown:
    """Wakes devrun's main thread to stop, from signal handlers and watcher threads, lock-free.

    A threading.Event cannot be set from a signal handler: the handler runs on the main thread
    between two bytecodes, maybe while that thread holds the Event's non-reentrant lock inside
    set()/wait() (or while an earlier handler does), and then waits for itself forever. A
    self-pipe needs no lock: poking is one os.write, and signals reach it via set_wakeup_fd.
    """

    def __init__(self) -> None:
        self._read_fd, self._write_fd = os.pipe()
        # Non-blocking (set_wakeup_fd requires it): a full pipe already holds a wake-up.
        os.set_blocking(self._write_fd, False)
        self._closed = False
        # Set once the main thread has started stopping; only that thread writes it.
        self.stopping = False

    @property
    def wakeup_fd(self) -> int:
        """The pipe's write end, for signal.set_wakeup_fd."""
        return self._write_fd

    def request(self) -> None:
        """Ask the main thread to stop; safe from any thread and from a signal handler."""
        if self._closed:
            return
        # BlockingIOError: the pipe is full, so a wake-up is already pending.
        with contextlib.suppress(BlockingIOError):
            os.write(self._write_fd, b"\0")

    def wait(self) -> None:
        """Block until a stop is requested (or a routed signal arrives), then mark stopping."""
        # PEP 475: a signal interrupting read() runs the (empty) Python handler and reads again;
        # the byte the signal wrote is then there, whichever thread the signal was delivered to.
        os.read(self._read_fd, 4096)
        self.stopping = True

    def close(self) -> None:
        """Close the pipe; route signals elsewhere and stop the watchers first."""
        if not self._closed:
            self._closed = True
            os.close(self._read_fd)
            os.close(self._write_fd)


def _on_stop_signal(signum: int, frame: FrameType | None) -> None:
    """Nothing: the C-level handler has already written the signal to the wakeup fd."""


def route_stop_signals(shutdown: Shutdown) -> Callable[[], None]:
    """Make SIGINT/SIGTERM wake `shutdown` (main thread only); returns a function undoing it."""
    # set_wakeup_fd first: once a handler is installed, its signals must find the pipe.
    previous_fd = signal.set_wakeup_fd(shutdown.wakeup_fd, warn_on_full_buffer=False)
    previous = {signum: signal.signal(signum, _on_stop_signal) for signum in STOP_SIGNALS}

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        signal.set_wakeup_fd(previous_fd)

    return restore


@dataclass
class Child:
    """A child process that devrun owns."""

    name: str
    proc: subprocess.Popen[bytes]

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(KILL_TIMEOUT_S)


def _tool(name: str) -> str:
    """A console script from this venv (falls back to PATH)."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if found is None:
        raise SystemExit(f"devrun: `{name}` not found; run `make install`")
    return found


def envoy_config(env: Mapping[str, str], var_dir: Path) -> Path:
    """The committed envoy/envoy.yaml, or a fresh one under var/ when OPTIX_ENVOY_* is set."""
    committed = REPO / "envoy" / "envoy.yaml"
    if not any(key.startswith("OPTIX_ENVOY_") for key in env):
        return committed
    out = var_dir / "envoy.yaml"
    child_env = {
        **env,
        "PYTHONPATH": os.pathsep.join([str(REPO / "envoy"), env.get("PYTHONPATH", "")]),
    }
    subprocess.run(
        [sys.executable, "-m", "optix_edge", "--out", str(out)], env=child_env, check=True
    )
    tighten(out)
    return out


def serve_env(env: Mapping[str, str]) -> dict[str, str]:
    """The environment of `optix serve`: devrun's, trusting proxies on loopback and logging
    every call (a developer watching the terminal) unless set."""
    return {"OPTIX_TRUSTED_PROXIES": DEFAULT_TRUSTED_PROXIES, "OPTIX_ACCESS_LOG": "all", **env}


@contextmanager
def child(
    name: str,
    argv: Sequence[str],
    shutdown: Shutdown,
    env: Mapping[str, str] | None = None,
) -> Iterator[Child]:
    """Start a child; a stop is requested when it exits on its own; stopped on the way out."""
    proc = subprocess.Popen(list(argv), cwd=REPO, env=env)
    owned = Child(name, proc)

    def watch() -> None:
        code = proc.wait()
        if not shutdown.stopping:
            print(f"devrun: {name} exited with status {code}; stopping", file=sys.stderr)
            shutdown.request()

    watcher = threading.Thread(target=watch, name=f"watch-{name}", daemon=True)
    watcher.start()
    try:
        yield owned
    finally:
        shutdown.stopping = True
        owned.stop()
        # Reaped by now: the watcher ends at once and never pokes a closed pipe.
        watcher.join(KILL_TIMEOUT_S)


def main() -> None:
    """Start everything, wait for Ctrl-C/SIGTERM or a child's exit, stop everything."""
    env = dict(os.environ)
    var_dir = private_dir(Path(env.get("OPTIX_VAR_DIR", "var")))
    demo_dir = REPO / "clients" / "web" / "dist"
    demo_port = int(env.get("OPTIX_DEMO_PORT", "8081"))
    grpc_port = env.get("OPTIX_PORT", "50051")
    edge = edge_url(env)
    shutdown = Shutdown()
    # Never undone: a signal while the process exits must not kill it or print a traceback.
    route_stop_signals(shutdown)
    config = envoy_config(env, var_dir)
    # Signals only wake shutdown.wait(); the stop path below (ExitStack, in reverse: the demo
    # site, Envoy, then the server) runs once on this thread, each step even if one raises.
    with ExitStack() as stack:
        stack.enter_context(
            child("optix serve", [_tool("optix"), "serve"], shutdown, serve_env(env))
        )
        stack.enter_context(
            child(
                "envoy",
                [_tool("envoy"), "-c", str(config), "--disable-hot-restart", "--log-level", "warn"],
                shutdown,
            )
        )
        if (demo_dir / "index.html").exists():
            site = stack.enter_context(
                static_site(demo_dir, port=demo_port, config=page_config(edge))
            )
            print(f"devrun: demo page at {site.url} (grpc-web via {edge}, from its config.json)")
        else:
            print("devrun: no demo page build (run `make web`)", file=sys.stderr)
        print(
            f"devrun: gRPC on 127.0.0.1:{grpc_port}, Envoy on {edge.removeprefix('http://')}; "
            "Ctrl-C stops all",
            flush=True,
        )
        shutdown.wait()
        print("devrun: stopping", file=sys.stderr)


if __name__ == "__main__":
    main()
