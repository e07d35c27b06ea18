"""The committed Envoy config: generated (not hand-edited), current, and valid for Envoy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.e2e.stack import ENVOY_DIR, render_envoy_config

COMMITTED = ENVOY_DIR / "envoy.yaml"
ENVOY = str(Path(sys.executable).parent / "envoy")


def validate(config: Path) -> subprocess.CompletedProcess[str]:
    """`envoy --mode validate` on a config file."""
    return subprocess.run(
        [ENVOY, "--mode", "validate", "-c", str(config), "--disable-hot-restart"],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_committed_config_is_valid() -> None:
    done = validate(COMMITTED)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK" in done.stdout + done.stderr


def test_committed_config_matches_a_fresh_generation(tmp_path: Path) -> None:
    fresh = render_envoy_config(tmp_path / "envoy.yaml", {})
    assert fresh.read_text() == COMMITTED.read_text(), (
        "envoy/envoy.yaml is stale: run `make envoy-config` and commit it"
    )


def test_admin_stays_on_loopback_when_the_listener_is_public(tmp_path: Path) -> None:
    config = render_envoy_config(tmp_path / "envoy.yaml", {"OPTIX_ENVOY_LISTEN_HOST": "0.0.0.0"})
    text = config.read_text()
    admin = text[text.index("\nadmin:") :]
    assert 'address: "127.0.0.1"' in admin.split("\n", 5)[4]
    assert 'address: "0.0.0.0"' in text  # the listener moved
    assert validate(config).returncode == 0
