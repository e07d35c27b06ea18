"""`make run`: all services, Envoy (grpc + grpc-web on :8080) and the demo page, stopped together.

Ctrl-C or SIGTERM stops every child cleanly; if any child dies, the others are stopped too.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType

REPO = Path.cwd()
STOP_TIMEOUT_S = 15.0


class QuietHandler(SimpleHTTPRequestHandler):
    """Serves files without logging every request and without browser caching."""

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


@contextmanager
def static_site(directory: Path, host: str = "127.0.0.1", port: int = 0) -> Iterator[StaticSite]:
    """Serve `directory` over HTTP in a background thread (port 0: any free port)."""
    handler = functools.partial(QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer((host, port), handler)
    thread = threading.Thread(target=server.serve_forever, name="static-site", daemon=True)
    thread.start()
    try:
        yield StaticSite(server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


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
            self.proc.wait(5)


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
    return out


@contextmanager
def child(name: str, argv: Sequence[str], stopped: threading.Event) -> Iterator[Child]:
    """Start a child; `stopped` is set when it exits on its own."""
    proc = subprocess.Popen(list(argv), cwd=REPO)
    owned = Child(name, proc)

    def watch() -> None:
        code = proc.wait()
        if not stopped.is_set():
            print(f"devrun: {name} exited with status {code}; stopping", file=sys.stderr)
            stopped.set()

    threading.Thread(target=watch, name=f"watch-{name}", daemon=True).start()
    try:
        yield owned
    finally:
        stopped.set()
        owned.stop()


def main() -> None:
    """Start everything, wait for Ctrl-C/SIGTERM or a child's exit, stop everything."""
    env = dict(os.environ)
    var_dir = Path(env.get("OPTIX_VAR_DIR", "var"))
    var_dir.mkdir(parents=True, exist_ok=True)
    demo_dir = REPO / "clients" / "web" / "dist"
    demo_port = int(env.get("OPTIX_DEMO_PORT", "8081"))
    stopped = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    config = envoy_config(env, var_dir)
    with ExitStack() as stack:
        stack.enter_context(child("optix serve", [_tool("optix"), "serve"], stopped))
        stack.enter_context(
            child(
                "envoy",
                [_tool("envoy"), "-c", str(config), "--disable-hot-restart", "--log-level", "warn"],
                stopped,
            )
        )
        if (demo_dir / "index.html").exists():
            site = stack.enter_context(static_site(demo_dir, port=demo_port))
            print(f"devrun: demo page at {site.url} (grpc-web via http://127.0.0.1:8080)")
        else:
            print("devrun: no demo page build (run `make web`)", file=sys.stderr)
        print("devrun: gRPC on 127.0.0.1:50051, Envoy on 127.0.0.1:8080; Ctrl-C stops all")
        stopped.wait()
        print("devrun: stopping", file=sys.stderr)


if __name__ == "__main__":
    main()
