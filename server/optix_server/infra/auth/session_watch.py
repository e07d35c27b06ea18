"""Telling open streams that their sign-in session ended (logout, password change, refresh-token
reuse), on every replica, so they end at once rather than when their access token expires."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from optix_server.infra.pubsub import PubSub, listen_resubscribing

SESSION_ENDED_CHANNEL = "auth.sessions.ended"


class SessionWatch:
    """One pub/sub subscription per process, fanned out to the streams of each session."""

    def __init__(self, pubsub: PubSub) -> None:
        self._pubsub = pubsub
        self._watchers: dict[str, set[Callable[[], None]]] = {}
        self._listening = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Subscribe (before the server takes calls, so no ending is missed)."""
        self._task = asyncio.create_task(self._listen(), name="auth-session-watch")
        async with asyncio.timeout(10):
            await self._listening.wait()

    async def stop(self) -> None:
        """Unsubscribe."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

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
        for on_end in list(self._watchers.get(payload.decode(), ())):
            on_end()
