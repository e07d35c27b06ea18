"""Each user's GetPortfolio answer, encoded once and served for up to `max_age`: pricing and
encoding a large book costs far more than sending it, and an app polls the same book many times
a second across its screens. Quotes in an answer are at most `max_age` older than they would be
if priced per call (the market data quote cache already allows seconds).

What the user changed is never served stale: every write that changes a user's book (a sync
finishing, a connection added, re-authorised, deleted or queued) calls `changed(user_id)`,
which drops the user's answer here and, through the `brokerage.portfolio.changes` channel, on
every replica. Builds are shared: concurrent calls for one user wait for one build. Bounded in
bytes; the least recently used answers go first."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from optix_server.infra.logging import get_logger
from optix_server.infra.pubsub import PubSub, listen_resubscribing

log = get_logger(__name__)

CHANGES_CHANNEL = "brokerage.portfolio.changes"
# The change message that drops every user's answer (a change across many users).
EVERYONE = "*"


async def no_change(user_id: str) -> None:
    """A change listener that does nothing (writers built without snapshots)."""
    del user_id


@dataclass(frozen=True, slots=True)
class _Answer:
    encoded: bytes
    built_at: float


class PortfolioSnapshots:
    """Encoded portfolio answers per user, fresh for `max_age_s`, invalidated on change."""

    def __init__(
        self,
        pubsub: PubSub,
        *,
        max_age_s: float = 1.0,
        max_bytes: int = 64 * 1024 * 1024,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pubsub = pubsub
        self._max_age = max_age_s
        self._max_bytes = max_bytes
        self._now = monotonic
        self._answers: OrderedDict[str, _Answer] = OrderedDict()
        self._bytes = 0
        self._builds: dict[str, asyncio.Task[bytes]] = {}
        # Users whose build in flight started before a change: its answer is returned to the
        # calls waiting for it but not kept.
        self._stale: set[str] = set()
        self._listener: asyncio.Task[None] | None = None
        self.builds = 0
        # Changes applied so far (from any replica), and a wake-up for whoever waits on them.
        self.changes_applied = 0
        self._applied = asyncio.Event()

    async def start(self) -> None:
        """Listen for changes made on any replica (from here on, none is missed)."""
        listening = asyncio.Event()
        self._listener = asyncio.create_task(
            listen_resubscribing(
                self._pubsub, CHANGES_CHANNEL, lambda p: self.forget(p.decode()), listening
            ),
            name="brokerage-portfolio-changes",
        )
        await listening.wait()

    async def stop(self) -> None:
        """Stop listening and drop every answer."""
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
            self._listener = None
        for build in list(self._builds.values()):
            build.cancel()
        self._answers.clear()
        self._bytes = 0

    async def get(self, user_id: str, build: Callable[[], Awaitable[bytes]]) -> bytes:
        """The user's answer: the kept one if fresh, else the one being built, else `build()`."""
        answer = self._answers.get(user_id)
        if answer is not None:
            if self._now() - answer.built_at < self._max_age:
                self._answers.move_to_end(user_id)
                return answer.encoded
            self._drop(user_id)
        task = self._builds.get(user_id)
        if task is None:
            task = asyncio.ensure_future(self._build(user_id, build))
            self._builds[user_id] = task
            task.add_done_callback(lambda _: self._builds.pop(user_id, None))
        # Shielded: one caller giving up does not cancel the build the others wait for.
        return await asyncio.shield(task)

    async def until_applied(self, count: int) -> None:
        """Wait until `count` changes have been applied here (tests and hand-overs)."""
        while self.changes_applied < count:
            await self._applied.wait()

    def forget(self, user_id: str) -> None:
        """Drop the user's answer (EVERYONE: every answer) on this replica only."""
        self.changes_applied += 1
        self._applied.set()
        self._applied = asyncio.Event()
        if user_id == EVERYONE:
            self._answers.clear()
            self._bytes = 0
            self._stale.update(self._builds)
        else:
            self._drop(user_id)
            if user_id in self._builds:
                self._stale.add(user_id)

    async def changed(self, user_id: str) -> None:
        """The user's book changed (EVERYONE: many books): drop it here and on every replica."""
        self.forget(user_id)
        try:
            await self._pubsub.publish(CHANGES_CHANNEL, user_id.encode())
        except Exception as exc:
            # Other replicas serve the old answer for at most max_age.
            log.warning("could not announce a portfolio change", error=str(exc))

    async def _build(self, user_id: str, build: Callable[[], Awaitable[bytes]]) -> bytes:
        started = self._now()
        self.builds += 1
        try:
            encoded = await build()
        finally:
            stale = user_id in self._stale
            self._stale.discard(user_id)
        if self._max_age > 0 and not stale:
            self._keep(user_id, _Answer(encoded, started))
        return encoded

    def _keep(self, user_id: str, answer: _Answer) -> None:
        if len(answer.encoded) > self._max_bytes:
            return
        self._drop(user_id)
        self._answers[user_id] = answer
        self._bytes += len(answer.encoded)
        while self._bytes > self._max_bytes:
            _, oldest = self._answers.popitem(last=False)
            self._bytes -= len(oldest.encoded)

    def _drop(self, user_id: str) -> None:
        answer = self._answers.pop(user_id, None)
        if answer is not None:
            self._bytes -= len(answer.encoded)
