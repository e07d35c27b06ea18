"""Alert events for their owner: history pages, and the resumable stream (replay, then live with
no gap and no duplicate) on any replica.

A user's event ids are consecutive (each firing takes the next value of the user's counter, in
commit order), so a stream knows the next id it must see: anything else on the live channel (a
message lost by pub/sub, or one that overtook another) makes it read the missing ids from the
database instead of skipping them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from optix.alert.v1 import alert_event_pb2
from optix_server.alert.convert import event_to_proto
from optix_server.alert.domain import AlertEvent
from optix_server.alert.events import EventRepository
from optix_server.alert.names import ALERTS
from optix_server.infra import errors
from optix_server.infra.aip.names import parse_parent
from optix_server.infra.aip.paging import PageTokens, page_size
from optix_server.infra.errors import ViolationCollector
from optix_server.infra.lifecycle import Lifecycle
from optix_server.infra.pubsub import PubSub

MAX_EVENT_PAGE = 1000
REPLAY_CHUNK = 500
MIN_HEARTBEAT, MAX_HEARTBEAT, DEFAULT_HEARTBEAT = 1.0, 60.0, 15.0
# The alias of "every alert of the user" in an events parent.
ALL_ALERTS = "-"


def events_channel(user_id: str) -> str:
    """The pub/sub channel carrying a user's new events (AlertEvent messages, serialised)."""
    return f"alert.events.{user_id}"


@dataclass(frozen=True)
class EventPage:
    """A page of events, newest first, and the token of the next."""

    events: list[AlertEvent]
    next_page_token: str


class AlertEventService:
    """History and live streams of alert events."""

    def __init__(
        self,
        events: EventRepository,
        pubsub: PubSub,
        lifecycle: Lifecycle,
        page_tokens: PageTokens,
    ) -> None:
        self._events = events
        self._pubsub = pubsub
        self._lifecycle = lifecycle
        self._page_tokens = page_tokens

    async def publish(self, event: AlertEvent) -> None:
        """Announce a committed event to every replica's streams of its user."""
        await self._pubsub.publish(
            events_channel(event.user_id), event_to_proto(event).SerializeToString()
        )

    async def _scope(self, caller: str, parent: str) -> tuple[str, str | None]:
        """(user id, alert id or None for all) of an events parent; an alert that neither
        exists nor left events is NOT_FOUND."""
        if parent.endswith(f"/alerts/{ALL_ALERTS}"):
            return parse_parent(parent.removesuffix(f"/alerts/{ALL_ALERTS}"), caller), None
        alert_id = ALERTS.parse(parent, caller, field="parent")
        if not await self._events.alert_known(caller, alert_id):
            raise ALERTS.not_found(parent)
        return caller, alert_id

    async def list_events(
        self,
        caller: str,
        parent: str,
        *,
        size: int,
        page_token: str,
        start: datetime | None,
        end: datetime | None,
        invalid_times: list[tuple[str, str]],
    ) -> EventPage:
        """A page of past events, newest first, keyed by event id."""
        check = ViolationCollector()
        for field, why in invalid_times:
            check.add(field, why)
        if start is not None and end is not None and end <= start:
            check.add("end_time", "must be after start_time")
        limit = page_size(size, cap=MAX_EVENT_PAGE)
        check.raise_if_any()
        user_id, alert_id = await self._scope(caller, parent)
        bound = {
            "parent": parent.replace("users/me/", f"users/{user_id}/", 1),
            "start": start.isoformat() if start else "",
            "end": end.isoformat() if end else "",
        }
        cursor = self._page_tokens.read(page_token, user_id, bound)
        before = None if cursor is None else int(cursor[0])
        events = await self._events.history(
            user_id, alert_id, before_event_id=before, limit=limit + 1, start=start, end=end
        )
        more = len(events) > limit
        events = events[:limit]
        token = (
            self._page_tokens.issue(user_id, bound, [events[-1].event_id])
            if more and events
            else ""
        )
        return EventPage(events, token)

    def heartbeat_interval(self, seconds: float | None) -> float:
        """The stream's heartbeat interval (default 15 s); outside [1 s, 60 s] is invalid."""
        if seconds is None:
            return DEFAULT_HEARTBEAT
        if not MIN_HEARTBEAT <= seconds <= MAX_HEARTBEAT:
            raise errors.InvalidArgument(
                "heartbeat_interval is out of range",
                [errors.FieldViolation("heartbeat_interval", "must be between 1 s and 60 s")],
            )
        return seconds

    async def stream(
        self,
        caller: str,
        parent: str,
        *,
        after_event_id: int | None,
        heartbeat_seconds: float,
    ) -> AsyncIterator[tuple[list[alert_event_pb2.AlertEvent], bool] | None]:
        """Batches of (events, replayed?) in id order, or None for a heartbeat; ends with
        UNAVAILABLE on shutdown. Replays retained events above `after_event_id` (when given),
        then goes live."""
        self._lifecycle.check()
        if after_event_id is not None and after_event_id < 0:
            raise errors.InvalidArgument(
                "after_event_id must not be negative",
                [errors.FieldViolation("after_event_id", "must be 0 or more")],
            )
        user_id, alert_id = await self._scope(caller, parent)
        # Subscribed before the history is read: whatever commits meanwhile arrives live too,
        # and the id check below drops it the second time.
        async with self._pubsub.subscribe(events_channel(user_id)) as live:
            seen = (
                after_event_id
                if after_event_id is not None
                else await self._events.last_event_id(user_id)
            )
            if after_event_id is not None:
                # Replayed in the user's id order, all alerts read (one alert's are kept), so
                # `seen` ends at the last id covered: the live check below continues from it.
                while True:
                    chunk = await self._events.after(user_id, seen, REPLAY_CHUNK)
                    if not chunk:
                        break
                    seen = chunk[-1].event_id
                    kept = [e for e in chunk if alert_id is None or e.alert_id == alert_id]
                    if kept:
                        yield [event_to_proto(e) for e in kept], True
            messages = aiter(live)
            # One read in flight across heartbeats: cancelling a pending read would end the
            # subscription's iterator.
            read: asyncio.Future[bytes] = asyncio.ensure_future(anext(messages))
            try:
                while True:
                    if not await self._ready(read, heartbeat_seconds):
                        yield None
                        continue
                    event = alert_event_pb2.AlertEvent.FromString(read.result())
                    read = asyncio.ensure_future(anext(messages))
                    if event.event_id <= seen:
                        continue  # already sent (replayed, or a duplicate)
                    fresh: list[alert_event_pb2.AlertEvent] = []
                    if event.event_id > seen + 1:
                        # A gap: the missing ones come from the database, in order.
                        missed = await self._events.between(user_id, seen, event.event_id)
                        fresh.extend(
                            event_to_proto(e)
                            for e in missed
                            if alert_id is None or e.alert_id == alert_id
                        )
                    seen = event.event_id
                    if alert_id is None or event.alert == ALERTS.format(user_id, alert_id):
                        fresh.append(event)
                    if fresh:
                        yield fresh, False
            finally:
                read.cancel()

    async def _ready(self, read: asyncio.Future[bytes], wait_s: float) -> bool:
        """Whether `read` completed within `wait_s` seconds; UNAVAILABLE once shutdown begins."""
        stop: asyncio.Future[Any] = asyncio.ensure_future(self._lifecycle.shutting_down.wait())
        pending: set[asyncio.Future[Any]] = {read, stop}
        try:
            await asyncio.wait(pending, timeout=wait_s, return_when="FIRST_COMPLETED")
        finally:
            stop.cancel()
        self._lifecycle.check()
        return read.done()
