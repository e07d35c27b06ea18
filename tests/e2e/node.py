"""Run the Node drivers built from clients/web (grpc-web probe, headless browser)."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.e2e.stack import DEMO_DIR, REPO, LogPump

WEB = REPO / "clients" / "web"
PROBE = WEB / "dist" / "node" / "probe.mjs"
BROWSER = WEB / "dist" / "node" / "browser.mjs"
APP = WEB / "dist" / "node" / "app.mjs"


def node_binary() -> str:
    """The node executable; the web build (`make web`) must have run."""
    node = shutil.which("node")
    assert node is not None, "node is not installed (Node 20 is part of the toolchain)"
    assert PROBE.exists() and (DEMO_DIR / "index.html").exists(), (
        f"{PROBE.relative_to(REPO)} is missing: run `make web` (npm ci + esbuild build)"
    )
    return node


def run_json(script: Path, *args: str, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Run a driver to completion and parse its JSON lines."""
    done = subprocess.run(
        [node_binary(), str(script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=WEB,
    )
    records = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert records, f"no output from {script.name}: {done.stderr}"
    return records


@contextmanager
def streaming(script: Path, *args: str) -> Iterator[tuple[subprocess.Popen[bytes], LogPump]]:
    """Start a driver and hand over its output line by line as it is printed."""
    proc = subprocess.Popen(
        [node_binary(), str(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=WEB,
    )
    pump = LogPump()
    threading.Thread(target=pump.run, args=(proc.stdout,), daemon=True).start()
    try:
        yield proc, pump
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
