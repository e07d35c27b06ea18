"""Ended sign-in sessions, so their access tokens stop working before they expire.

The record is durable: each ending is a row in the database (RevocationLog), so a session
ended before or during a Redis outage stays ended when Redis comes back empty. Every process
mirrors the unexpired endings in memory (loaded at start, kept current by the endings announced
on pub/sub and by a poll of the database that covers announcements lost while Redis was away),
so checking a token costs no I/O and keeps working while Redis or the database is down."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from optix_server.infra.auth.clock import Clock, SystemClock
from optix_server.infra.auth.session_watch import SESSION_ENDED_CHANNEL
from optix_server.infra.logging import get_logger
from optix_server.infra.pubsub import PubSub, listen_resubscribing

log = get_logger(__name__)

# A poll re-reads this far before the newest ending it saw: endings written by replicas whose
# clocks lag, or committed after a later one, are not skipped.
POLL_OVERLAP = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class Ending:
    """One ended session and until when its access tokens could still be presented."""

    session_id: str
    revoke_time: datetime
    expire_time: datetime


class RevocationLog(Protocol):
    """Where endings are kept for good (the database; a list in tests)."""

    async def add(self, ending: Ending) -> None:
        """Record an ending (again is fine)."""
        ...

    async def since(self, revoked_after: datetime, now: datetime) -> list[Ending]:
        """Endings revoked after `revoked_after` whose tokens have not all expired at `now`."""
        ...

    async def prune(self, expired_before: datetime) -> int:
        """Forget endings whose tokens have all expired; how many."""
        ...


class MemoryRevocationLog:
    """A RevocationLog in memory (tests; share one between instances to play the database)."""

    def __init__(self) -> None:
        self.endings: dict[str, Ending] = {}

    async def add(self, ending: Ending) -> None:
        """Record an ending."""
        self.endings[ending.session_id] = ending

    async def since(self, revoked_after: datetime, now: datetime) -> list[Ending]:
        """Endings revoked after `revoked_after`, still relevant at `now`."""
        return [
            e
            for e in self.endings.values()
            if e.revoke_time > revoked_after and e.expire_time > now
        ]

    async def prune(self, expired_before: datetime) -> int:
        """Forget endings expired before `expired_before`."""
        gone = [s for s, e in self.endings.items() if e.expire_time <= expired_before]
        for session_id in gone:
            del self.endings[session_id]
        return len(gone)


class SessionRevocations:
    """The deny-list of session ids (token families): durable in `log`, mirrored here."""

    def __init__(
        self,
        log: RevocationLog,
        max_token_lifetime: timedelta,
        pubsub: PubSub | None = None,
        *,
        clock: Clock | None = None,
        poll_seconds: float = 2.0,
    ) -> None:
        self._log = log
        self._pubsub = pubsub
        self._clock = clock or SystemClock()
        # Plus a minute for clock skew between replicas.
        self._lifetime = max_token_lifetime + timedelta(minutes=1)
        self._poll_seconds = poll_seconds
        self._ended: dict[str, datetime] = {}
        self._newest: datetime | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Load the unexpired endings, then follow new ones (announced and polled)."""
        if self._tasks:
            return
        listening = asyncio.Event()
        if self._pubsub is not None:
            self._tasks.append(
                asyncio.create_task(
                    listen_resubscribing(
                        self._pubsub, SESSION_ENDED_CHANNEL, self._announced, listening
                    ),
                    name="auth-revocations-listen",
                )
            )
            await listening.wait()
        await self.refresh()
        self._tasks.append(asyncio.create_task(self._poll(), name="auth-revocations-poll"))

    async def stop(self) -> None:
        """Stop following endings."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def revoke(self, session_id: str) -> None:
        """Refuse access tokens of `session_id` from now on (durably, on every replica), and
        end its open streams. Raises when the ending cannot be recorded."""
        now = self._clock.now()
        ending = Ending(session_id, now, now + self._lifetime)
        await self._log.add(ending)
        self._remember(ending)
        if self._pubsub is not None:
            try:
                await self._pubsub.publish(SESSION_ENDED_CHANNEL, session_id.encode())
            except Exception as exc:
                # Recorded: the other replicas' polls find it within poll_seconds.
                log.warning("could not announce a session ending", error=type(exc).__name__)

    async def is_revoked(self, session_id: str) -> bool:
        """Whether `session_id` was ended."""
        return session_id in self._ended

    async def ended_among(self, session_ids: Sequence[str]) -> set[str]:
        """Which of `session_ids` were ended."""
        return {s for s in session_ids if s in self._ended}

    async def refresh(self) -> None:
        """Read the endings recorded since the last read (start, poll, tests)."""
        now = self._clock.now()
        after = (self._newest - POLL_OVERLAP) if self._newest else now - self._lifetime
        for ending in await self._log.since(after, now):
            self._remember(ending)
        for session_id, expires in list(self._ended.items()):
            if expires <= now:
                del self._ended[session_id]

    def _remember(self, ending: Ending) -> None:
        self._ended[ending.session_id] = max(
            ending.expire_time, self._ended.get(ending.session_id, ending.expire_time)
        )
        if self._newest is None or ending.revoke_time > self._newest:
            self._newest = ending.revoke_time

    def _announced(self, payload: bytes) -> None:
        # The announcing replica recorded it first; until our poll reads the row, keep it for
        # the longest a token of it could live.
        now = self._clock.now()
        session_id = payload.decode()
        if session_id not in self._ended:
            self._ended[session_id] = now + self._lifetime

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._poll_seconds)
            try:
                await self.refresh()
                await self._log.prune(self._clock.now() - timedelta(minutes=1))
            except Exception as exc:
                # The database is away: the endings known so far still hold.
                log.warning("could not read session endings", error=type(exc).__name__)
