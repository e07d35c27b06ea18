"""The committed Envoy config: generated (not hand-edited), current, and valid for Envoy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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


@pytest.mark.parametrize(
    "upstreams",
    ["a:1,b", "a:1,,b:2", "a:1, b:99999", "", "a:1,a:1", "a b:1", "a:1;b:2", "[::1]", ":80"],
)
def test_a_malformed_upstream_list_is_refused_in_one_line(tmp_path: Path, upstreams: str) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OPTIX_ENVOY_")}
    done = subprocess.run(
        [sys.executable, "-m", "optix_edge", "--out", str(tmp_path / "envoy.yaml")],
        env={**clean, "PYTHONPATH": str(ENVOY_DIR), "OPTIX_ENVOY_UPSTREAM_USER": upstreams},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "OPTIX_ENVOY_UPSTREAM_USER" in lines[0], done.stderr
    assert not (tmp_path / "envoy.yaml").exists()


def test_several_replicas_per_upstream_are_endpoints_with_outlier_detection(
    tmp_path: Path,
) -> None:
    config = render_envoy_config(
        tmp_path / "envoy.yaml",
        {"OPTIX_ENVOY_UPSTREAM_DEFAULT": "10.0.0.1:50051,optix-b.internal:50052,[::1]:50053"},
    )
    done = validate(config)
    assert done.returncode == 0, done.stdout + done.stderr
    text = config.read_text()
    for address, port in (("10.0.0.1", 50051), ("optix-b.internal", 50052), ("::1", 50053)):
        assert f'address: "{address}"' in text and f"portValue: {port}" in text, address
    assert "outlierDetection" in text and "retryBudget" in text
    # Reads retry on UNAVAILABLE too; writes only when the call never reached a replica.
    assert 'retryOn: "connect-failure,refused-stream,reset-before-request,unavailable"' in text
    assert 'retryOn: "connect-failure,refused-stream,reset-before-request"\n' in text
