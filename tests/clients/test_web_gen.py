"""clients/web/src/gen (committed) is what protoc-gen-es makes from proto/ today."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GEN = Path("clients/web/src/gen")
PLUGIN = REPO / "clients/web/node_modules/.bin/protoc-gen-es"


def _differences(left: Path, right: Path) -> list[str]:
    compared = filecmp.dircmp(left, right)
    found = [str(left / n) for n in compared.left_only + compared.right_only + compared.diff_files]
    for name in compared.common_dirs:
        found += _differences(left / name, right / name)
    return found


def test_web_client_code_is_current(tmp_path: Path) -> None:
    assert PLUGIN.exists(), "protoc-gen-es is missing: run `make web` (npm ci in clients/web)"
    buf = Path(sys.executable).parent / "buf"
    subprocess.run(
        [str(buf), "generate", "--template", "buf.gen.web.yaml", "-o", str(tmp_path)],
        cwd=REPO,
        check=True,
        timeout=120,
    )
    stale = _differences(REPO / GEN, tmp_path / GEN)
    assert not stale, f"clients/web/src/gen is stale ({stale[:5]}): run `make web-gen`"
