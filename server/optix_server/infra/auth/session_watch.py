"""Telling open streams that their sign-in session ended (logout, password change, refresh-token
reuse), on every replica, so they end at once rather than when their access token expires.

Endings travel on pub/sub, which does not keep messages for a listener that is away (Redis
restarting, say), so the watch also sweeps: every `sweep_seconds` it asks the deny-list which
watched sessions ended, and ends those too."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from optix_server.infra.logging import get_logger
from optix_server.infra.pubsub import PubSub, listen_resubscribing

log = get_logger(__name__)

EndedAmong = Callable[[Sequence[str]], Awaitable[set[str]]]

SESSION_ENDED_CHANNEL = "auth.sessions.ended"


class SessionWatch:
    """One pub/sub subscription per process, fanned out to the streams of each session."""

    def __init__(
        self,
        pubsub: PubSub,
        ended_among: EndedAmong | None = None,
        sweep_seconds: float = 30.0,
    ) -> None:
        self._pubsub = pubsub
        self._ended_among = ended_among
        self._sweep_seconds = sweep_seconds
        self._watchers: dict[str, set[Callable[[], None]]] = {}
        self._listening = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Subscribe (before the server takes calls, so no ending is missed) and sweep."""
        self._tasks = [asyncio.create_task(self._listen(), name="auth-session-watch")]
        if self._ended_among is not None:
            self._tasks.append(
                asyncio.create_task(self._sweep(self._ended_among), name="auth-session-sweep")
            )
        async with asyncio.timeout(10):
            await self._listening.wait()

    async def stop(self) -> None:
        """Unsubscribe and stop sweeping."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def watch(self, session_id: str, on_end: Callable[[], None]) -> Callable[[], None]:
        """Call `on_end` when `session_id` ends; returns the function that stops watching."""
        watchers = self._watchers.setdefault(session_id, set())
        watchers.add(on_end)

        def unwatch() -> None:
            watchers.discard(on_end)
            if not watchers and self._watchers.get(session_id) is watchers:
                del self._watchers[session_id]

        return unwatch

    async def _listen(self) -> None:
        # Resubscribes after a failure: missing endings would leave revoked streams running.
        await listen_resubscribing(
            self._pubsub, SESSION_ENDED_CHANNEL, self._ended, self._listening
        )

    def _ended(self, payload: bytes) -> None:
        self._end(payload.decode())

    def _end(self, session_id: str) -> None:
        for on_end in list(self._watchers.get(session_id, ())):
            on_end()

    async def _sweep(self, ended_among: EndedAmong) -> None:
        while True:
            await asyncio.sleep(self._sweep_seconds)
            if not self._watchers:
                continue
            try:
                ended = await ended_among(list(self._watchers))
            except Exception as exc:
                # The next sweep asks again; meanwhile announcements still arrive.
                log.warning("could not sweep ended sessions", error=str(exc))
                continue
            for session_id in ended:
                self._end(session_id)
