"""A benchmark's server in a spawned process (a clean interpreter, like `optix serve`), talked
to over a pipe: the process sends its port once serving, answers requests on the pipe, and
stops on "stop"."""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any

START_TIMEOUT_S = 120


@contextlib.contextmanager
def spawned_server(target: Callable[..., None], *args: Any) -> Iterator[tuple[Connection, int]]:
    """Run target(*args, pipe_end) in a spawned process; yields (pipe, the port it reported)."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=target, args=(*args, child), daemon=True)
    process.start()
    try:
        if not parent.poll(START_TIMEOUT_S):
            raise RuntimeError("the server process did not start")
        yield parent, parent.recv()
    finally:
        parent.send("stop")
        process.join(15)
        if process.is_alive():
            process.kill()
