"""A Node driver the test talks with: JSON lines from its stdout, lines back on its stdin."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.node import WEB, node_binary
from tests.e2e.stack import LogPump


@dataclass
class Dialogue:
    """A running driver: read its next JSON record, answer it."""

    proc: subprocess.Popen[bytes]
    output: LogPump

    def record(self, timeout: float) -> dict[str, Any]:
        """The next JSON object the driver prints (other output is kept for failure messages)."""
        while True:
            try:
                line = self.output.events.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(
                    f"no record from the driver within {timeout} s:\n{self.output.tail()}"
                ) from None
            if not line:
                raise AssertionError(f"the driver exited:\n{self.output.tail()}")
            try:
                parsed = json.loads(line)
            except ValueError:
                continue
            if isinstance(parsed, dict):
                return parsed

    def send(self, message: dict[str, Any]) -> None:
        """One line of JSON on the driver's stdin."""
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()


@contextmanager
def dialogue(script: Path, *args: str) -> Iterator[Dialogue]:
    """Start `node script args...` in clients/web; killed on exit if still running."""
    proc = subprocess.Popen(
        [node_binary(), str(script), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=WEB,
    )
    output = LogPump()
    threading.Thread(target=output.run, args=(proc.stdout,), daemon=True).start()
    try:
        yield Dialogue(proc, output)
    except BaseException:
        proc.kill()  # a failed test: don't let the driver carry on alone
        raise
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
