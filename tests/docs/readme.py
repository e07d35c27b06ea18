"""Read README.md's fenced code blocks with their `<!-- readme-test: ... -->` directives, and run
them in order as a reader would: Python blocks as scripts, shell blocks in bash sharing state."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

# Languages the test executes, and the ones that are prose (trees, sample output), never run.
PYTHON = frozenset({"python"})
SHELL = frozenset({"sh", "bash"})
TEXT = frozenset({"text"})
# A fixed address left in a block after substitution would reach whatever serves there.
FIXED_ADDRESS = re.compile(r"(?:127\.0\.0\.1|localhost|0\.0\.0\.0|\[::1\]):\d+")
BLOCK_TIMEOUT_S = 30.0

_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[^\s`]*)[ \t]*$")
_DIRECTIVE = re.compile(r"^\s*<!--\s*readme-test:\s*(?P<kind>[a-z-]+)\s*(?::(?P<arg>.*?))?-->\s*$")
_KINDS = frozenset({"skip", "expect", "match", "until"})

# Bash around each shell block: strict mode, the previous blocks' variables and functions
# sourced, and after the block its own saved for the next one (a reader's terminal keeps them).
_SHELL_PRELUDE = """\
set -euo pipefail
__readme_base=$(compgen -v)
if [[ -s "$README_TEST_STATE" ]]; then source "$README_TEST_STATE"; fi
__readme_save() {
  {
    export -p | grep -vE '^declare -x (PWD|OLDPWD|SHLVL|_)=' || true
    for __readme_name in $(compgen -v); do
      case $__readme_name in __readme*) continue ;; esac
      grep -qxF -- "$__readme_name" <<<"$__readme_base" || declare -p "$__readme_name"
    done
    declare -f
  } > "$README_TEST_STATE"
}
"""
_SHELL_EPILOGUE = "\n__readme_save\n"


def _aligned(prelude: str, fence_line: int) -> str:
    """`prelude` padded so the block's code keeps its README line numbers in error messages."""
    return prelude + "\n" * max(0, fence_line - prelude.count("\n"))


class ReadmeFormatError(ValueError):
    """README.md has a directive or fence the test cannot place."""


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it starts, its language, code and directives."""

    line: int
    lang: str
    code: str
    skip: str | None = None
    expects: tuple[str, ...] = ()
    matches: tuple[str, ...] = ()
    until: str | None = None

    @property
    def where(self) -> str:
        """README.md:<line> (<lang>), for messages."""
        return f"README.md:{self.line} ({self.lang or 'untagged'})"

    @property
    def runs(self) -> bool:
        """Whether the test executes this block."""
        return self.skip is None and self.lang in PYTHON | SHELL


def parse(text: str) -> list[Block]:
    """Every fenced block of a Markdown text with the directives right above it."""
    blocks: list[Block] = []
    problems: list[str] = []
    pending: list[tuple[int, str, str]] = []
    lines = text.splitlines()
    number = 0
    while number < len(lines):
        line = lines[number]
        number += 1
        directive = _DIRECTIVE.match(line)
        if directive:
            pending.append((number, directive["kind"], (directive["arg"] or "").strip()))
            continue
        fence = _FENCE.match(line)
        if fence is None:
            if line.strip() and pending:
                problems.append(f"README.md:{pending[0][0]}: directive not right above a block")
                pending = []
            continue
        start, indent, body = number, fence["indent"], []
        while number < len(lines) and lines[number].strip() != "```":
            body.append(lines[number].removeprefix(indent))
            number += 1
        if number == len(lines):
            problems.append(f"README.md:{start}: the block never closes")
            break
        number += 1
        block, wrong = _block(start, fence["lang"], "\n".join(body) + "\n", pending)
        blocks.append(block)
        problems.extend(wrong)
        pending = []
    if pending:
        problems.append(f"README.md:{pending[0][0]}: directive not right above a block")
    if problems:
        raise ReadmeFormatError("\n".join(problems))
    return blocks


def _block(
    line: int, lang: str, code: str, directives: list[tuple[int, str, str]]
) -> tuple[Block, list[str]]:
    problems: list[str] = []
    skip: str | None = None
    until: str | None = None
    expects: list[str] = []
    matches: list[str] = []
    for at, kind, arg in directives:
        if kind not in _KINDS:
            problems.append(f"README.md:{at}: unknown readme-test directive {kind!r}")
        elif not arg:
            problems.append(f"README.md:{at}: `readme-test: {kind}` needs `: <text>`")
        elif kind == "skip":
            skip = arg
        elif kind == "until":
            until = arg
        elif kind == "match":
            try:
                re.compile(arg)
            except re.error as error:
                problems.append(f"README.md:{at}: `match` is not a regular expression: {error}")
            matches.append(arg)
        else:
            expects.append(arg)
    block = Block(line, lang, code, skip, tuple(expects), tuple(matches), until)
    if skip is not None and (expects or matches or until):
        problems.append(f"{block.where}: a skipped block cannot also expect output")
    if until is not None and lang not in SHELL:
        problems.append(f"{block.where}: `until` is for shell blocks (interrupted like Ctrl-C)")
    return block, problems


def unaccounted(blocks: list[Block]) -> list[str]:
    """Blocks the test neither runs nor was told to skip (with why), so none rots unseen."""
    problems = []
    for block in blocks:
        if block.skip is None and block.lang not in PYTHON | SHELL | TEXT:
            problems.append(
                f"{block.where}: neither run nor skipped: tag it ```python / ```sh / ```text,"
                " or put `<!-- readme-test: skip: <why> -->` right above it"
            )
    return problems


@dataclass
class Outcome:
    """What a block did: exit status and output."""

    returncode: int
    stdout: str
    stderr: str
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        """Exit 0, or ended by the Ctrl-C an `until` block is stopped with."""
        return self.returncode == 0 or (
            self.interrupted and self.returncode in (128 + signal.SIGINT, -signal.SIGINT)
        )

    def report(self) -> str:
        """Exit status and output, for failure messages."""
        return (
            f"exit {self.returncode} (line numbers below are README.md's)\n"
            f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"
        )


@dataclass
class Reader:
    """Runs blocks in README order, as one reader in one terminal, against the test's servers:
    `addresses` maps the README's addresses to the ones serving, shell state lives in `work`."""

    repo: Path
    python: Path
    work: Path
    addresses: Mapping[str, str]
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.env = {**self.env, "README_TEST_STATE": str(self.work / "shell-state.sh")}

    def prepare(self, block: Block) -> str:
        """The block's code pointed at the test's servers; no other fixed address may remain."""
        code = block.code
        for readme_address, served in self.addresses.items():
            code = code.replace(readme_address, served)
        left = sorted(set(FIXED_ADDRESS.findall(code)) - set(self.addresses.values()))
        if left:
            raise AssertionError(
                f"{block.where} names {', '.join(left)}, which the test does not serve: use"
                f" one of {', '.join(self.addresses)} or skip the block"
            )
        return code

    def run(self, block: Block) -> Outcome:
        """Execute one block to its end (or, for `until`, until that output and a Ctrl-C)."""
        code = self.prepare(block)
        if block.lang in PYTHON:
            script = self.work / f"readme_{block.line}.py"
            script.write_text(_aligned("", block.line) + code)
            argv = [str(self.python), str(script)]
        else:
            script = self.work / f"readme_{block.line}.sh"
            script.write_text(_aligned(_SHELL_PRELUDE, block.line) + code + _SHELL_EPILOGUE)
            argv = ["bash", str(script)]
        if block.until is not None:
            return self._until(argv, block.until)
        proc = self._start(argv, stderr=subprocess.PIPE)
        try:
            stdout, stderr = proc.communicate(timeout=BLOCK_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            raise AssertionError(
                f"{block.where} still runs after {BLOCK_TIMEOUT_S} s (one that serves until"
                f" Ctrl-C needs `until: <text>`):\n{stdout}\n{stderr}"
            ) from None
        return Outcome(proc.returncode, stdout, stderr)

    def _start(self, argv: list[str], stderr: int) -> subprocess.Popen[str]:
        # A session of its own: a SIGINT reaches every process of the block, as Ctrl-C does,
        # and nothing it started outlives a kill.
        return subprocess.Popen(
            argv,
            cwd=self.repo,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )

    def _until(self, argv: list[str], text: str) -> Outcome:
        proc = self._start(argv, stderr=subprocess.STDOUT)
        lines: queue.Queue[str] = queue.Queue()
        seen: list[str] = []

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.put(line)
            lines.put("")

        threading.Thread(target=pump, daemon=True).start()
        try:
            while text not in "".join(seen):
                try:
                    line = lines.get(timeout=BLOCK_TIMEOUT_S)
                except queue.Empty:
                    raise AssertionError(
                        f"no {text!r} within {BLOCK_TIMEOUT_S} s:\n" + "".join(seen)
                    ) from None
                if not line:  # ended by itself before printing `text`
                    return Outcome(proc.wait(), "".join(seen), "")
                seen.append(line)
            # Ctrl-C: the block ends before saving its shell state (a stream sets none).
            os.killpg(proc.pid, signal.SIGINT)
            returncode = proc.wait(BLOCK_TIMEOUT_S)
            while line := lines.get(timeout=BLOCK_TIMEOUT_S):
                seen.append(line)
            return Outcome(returncode, "".join(seen), "", interrupted=True)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
