"""Runs the web client's own unit tests (node:test, built by `make web`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

WEB = Path(__file__).resolve().parents[2] / "clients" / "web"
SESSION_TESTS = WEB / "dist" / "node" / "session.test.mjs"


def test_web_session_unit_tests_pass() -> None:
    node = shutil.which("node")
    assert node is not None, "node is not installed"
    assert SESSION_TESTS.exists(), "clients/web is not built: run `make web`"
    done = subprocess.run(
        [node, "--test", str(SESSION_TESTS)], capture_output=True, text=True, timeout=120, cwd=WEB
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "# fail 0" in done.stdout
