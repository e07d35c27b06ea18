"""Process lifecycle: the shutdown signal long-lived streams watch to end with UNAVAILABLE."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from optix_server.infra.errors import Unavailable

T = TypeVar("T")

SHUTDOWN_MESSAGE = "server is shutting down; reconnect to resume"


class Lifecycle:
    """Holds the process-wide 'shutting down' event (one per server, passed to slices)."""

    def __init__(self) -> None:
        self.shutting_down = asyncio.Event()

    def begin_shutdown(self) -> None:
        """Tell every stream to finish."""
        self.shutting_down.set()

    def check(self) -> None:
        """Raise Unavailable when shutting down (call before starting long work)."""
        if self.shutting_down.is_set():
            raise Unavailable(SHUTDOWN_MESSAGE, reason="SHUTTING_DOWN")

    async def race(self, awaitable: Awaitable[T]) -> T:
        """Await `awaitable`, or raise Unavailable if shutdown begins first."""
        self.check()
        task = asyncio.ensure_future(awaitable)
        stopper = asyncio.ensure_future(self.shutting_down.wait())
        try:
            done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            task.cancel()
            stopper.cancel()
            raise
        stopper.cancel()
        if task in done:
            return task.result()
        task.cancel()
        raise Unavailable(SHUTDOWN_MESSAGE, reason="SHUTTING_DOWN")
