"""README.md's code blocks, executed in order against a real server and Envoy, so they cannot rot:
every block is run or carries a visible `<!-- readme-test: skip: <why> -->`."""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docs.readme import Block, Reader, ReadmeFormatError, parse, unaccounted
from tests.e2e.stack import REPO, envoy, envoy_env, free_port, optix_server, render_envoy_config

README = REPO / "README.md"
BIN = Path(sys.executable).parent
# The addresses the README names (those `make run` serves on) and what each stands for here.
GRPC_ADDRESS = "127.0.0.1:50051"
EDGE_ADDRESS = "127.0.0.1:8080"


def readme_blocks() -> list[Block]:
    """The README's blocks, parsed."""
    return parse(README.read_text())


def test_every_block_is_run_or_skipped_with_a_reason() -> None:
    blocks = readme_blocks()
    fences = [line for line in README.read_text().splitlines() if re.match(r"\s*```", line)]
    assert len(fences) == 2 * len(blocks), "a fence the parser did not pair"
    assert unaccounted(blocks) == []
    run = [block for block in blocks if block.runs]
    assert {block.lang for block in run} >= {"python", "sh"}, "the README lost its examples?"


def test_the_webhook_receiver_example_is_the_tested_one() -> None:
    # The README's receiver does not run here (it serves until stopped); the tested copy does
    # (tests/alert/test_webhooks.py), so the two must be the same code.
    tested = (REPO / "tests" / "support" / "webhook_receiver_example.py").read_text()
    code = tested[tested.index("import hashlib") :]
    [block] = [b for b in readme_blocks() if "class OptixWebhook" in b.code]
    assert block.code.strip() == code.strip()


def test_unmarked_and_misplaced_directives_are_refused() -> None:
    assert unaccounted(parse("```\nls\n```\n"))  # untagged
    assert unaccounted(parse("```ts\nf()\n```\n"))  # a language nobody runs
    assert not unaccounted(parse("<!-- readme-test: skip: needs a browser -->\n```ts\nf()\n```\n"))
    for broken in (
        "<!-- readme-test: skip -->\n```sh\nls\n```\n",  # no reason
        "<!-- readme-test: skip: why -->\nprose\n```sh\nls\n```\n",  # not above the block
        "<!-- readme-test: run-maybe: x -->\n```sh\nls\n```\n",  # unknown
        "<!-- readme-test: until: x -->\n```python\npass\n```\n",  # Ctrl-C is for shells
        "<!-- readme-test: match: (unclosed -->\n```sh\nls\n```\n",  # not a regex
        "```sh\nls\n",  # never closed
    ):
        with pytest.raises(ReadmeFormatError):
            parse(broken)
    (block,) = parse(
        '<!-- readme-test: expect: "status": "SERVING" -->\n\n```sh\n  grpcurl list\n```\n'
    )
    assert block.expects == ('"status": "SERVING"',) and block.runs


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """`optix serve` and Envoy on free ports: the README's addresses mapped to theirs."""
    with optix_server(tmp_path_factory.mktemp("readme-var")) as backend:
        listen, admin = free_port(), free_port()
        config = render_envoy_config(
            tmp_path_factory.mktemp("readme-envoy") / "envoy.yaml",
            envoy_env(backend.address, listen, admin),
        )
        with envoy(config, listen, admin) as edge:
            yield {GRPC_ADDRESS: backend.address, EDGE_ADDRESS: edge.address}


def reader_env(var_dir: Path) -> dict[str, str]:
    """The environment of a second terminal at the repo root: no OPTIX_* settings, and
    .venv/bin not on PATH (the README's own `export PATH=...` block must put it there)."""
    venv = BIN.resolve()
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTIX_")}
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = os.pathsep.join(p for p in path if Path(p).resolve() != venv)
    env["OPTIX_VAR_DIR"] = str(var_dir)  # whatever a block starts stays out of the checkout
    return env


@pytest.mark.e2e
def test_readme_blocks_run_as_written(served: dict[str, str], tmp_path: Path) -> None:
    if shutil.which("jq") is None:
        message = "jq is not installed (apt-get install jq): the README's shell blocks use it"
        if os.environ.get("OPTIX_TEST_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    reader = Reader(REPO, BIN / "python", tmp_path, served, reader_env(tmp_path / "var"))
    ran = []
    for block in readme_blocks():
        if not block.runs:
            continue
        outcome = reader.run(block)
        assert outcome.ok, f"{block.where} failed as written: {outcome.report()}"
        for expected in (*block.expects, *filter(None, [block.until])):
            assert expected in outcome.stdout, (
                f"{block.where} should print {expected!r}: {outcome.report()}"
            )
        for pattern in block.matches:
            assert re.search(pattern, outcome.stdout, re.MULTILINE), (
                f"{block.where} should print a line matching {pattern!r}: {outcome.report()}"
            )
        ran.append(block.lang)
    assert {"python", "sh"} <= set(ran)
