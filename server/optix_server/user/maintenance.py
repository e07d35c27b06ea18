"""Background housekeeping of the user slice: expired challenges and sessions are deleted."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from optix_server.infra.auth.clock import Clock
from optix_server.infra.background import BackgroundTask
from optix_server.infra.lifecycle import Lifecycle
from optix_server.infra.logging import get_logger
from optix_server.user.repository import UserRepository

log = get_logger(__name__)

PURGE_INTERVAL = timedelta(hours=1)
# Keep dead rows a day: enough to investigate a reuse alert, short enough to stay small.
RETENTION = timedelta(days=1)


class Janitor:
    """Deletes expired user-slice rows periodically until the server shuts down."""

    def __init__(self, repository: UserRepository, clock: Clock, lifecycle: Lifecycle) -> None:
        self._repo = repository
        self._clock = clock
        self._lifecycle = lifecycle
        self._background = BackgroundTask(self._run, "user-janitor")

    async def purge_once(self) -> None:
        """Delete what expired more than RETENTION ago."""
        await self._repo.purge_expired(self._clock.now() - RETENTION)

    async def _run(self) -> None:
        while not self._lifecycle.shutting_down.is_set():
            try:
                await self.purge_once()
            except Exception:
                # Housekeeping must never take the service down; it retries next interval.
                log.exception("purging expired user rows failed")
            # Wakes at once on shutdown instead of sleeping through it.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._lifecycle.shutting_down.wait(), PURGE_INTERVAL.total_seconds()
                )

    def start(self) -> None:
        """Start the periodic purge."""
        self._background.start()

    async def stop(self) -> None:
        """Stop the periodic purge."""
        await self._background.stop()
