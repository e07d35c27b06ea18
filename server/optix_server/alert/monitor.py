"""The alert monitor: every replica runs one. It holds the ACTIVE alerts in the condition engine
(rebuilt from the database at start, kept in step with every change on any replica through the
`alert.changes` channel), feeds it live quotes, and asks the database to record each candidate
firing; the database's conditional write decides, so replicas that see the same tick fire a
one-shot alert once. It also moves alerts past their expire time to EXPIRED (quotes or not) and
prunes events past their retention."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from optix.marketdata.v1 import quote_pb2
from optix_server.alert.conditions import AlertState
from optix_server.alert.domain import Alert
from optix_server.alert.engine import AlertSpec, Candidate, ConditionEngine
from optix_server.alert.event_service import AlertEventService
from optix_server.alert.events import EventRepository, Firing
from optix_server.alert.quote_feed import QuoteFeed
from optix_server.alert.repository import AlertRepository
from optix_server.alert.ticks import message, tick_from_quote, trigger_values
from optix_server.common.exchange_calendar import ExchangeCalendar, us_options_calendar
from optix_server.infra.auth.clock import Clock
from optix_server.infra.logging import get_logger
from optix_server.infra.pubsub import PubSub, listen_resubscribing

log = get_logger(__name__)

CHANGES_CHANNEL = "alert.changes"
# Firings recorded at once (each is one short transaction).
MAX_CONCURRENT_FIRINGS = 8


async def _no_webhook(alert: Alert) -> None:
    """No webhook for any alert (monitors built without delivery)."""
    del alert


def spec_of(alert: Alert) -> AlertSpec:
    """What the engine needs of an alert."""
    return AlertSpec(
        alert_id=alert.id,
        symbol=alert.symbol,
        condition=alert.condition,
        frequency=alert.frequency,
        cooldown=alert.cooldown,
        expire_time=alert.expire_time,
        last_fire_time=alert.last_fire_time,
    )


@dataclass(frozen=True)
class MonitorTiming:
    """How often the monitor sweeps for expiry and prunes old events."""

    expiry_sweep: timedelta = timedelta(seconds=1)
    prune_every: timedelta = timedelta(hours=1)
    retention: timedelta = timedelta(days=90)


class AlertMonitor:
    """Evaluates live quotes against the ACTIVE alerts and records their firings."""

    def __init__(
        self,
        engine: ConditionEngine,
        alerts: AlertRepository,
        events: EventRepository,
        event_service: AlertEventService,
        pubsub: PubSub,
        clock: Clock,
        quote_feed: Callable[[Callable[[quote_pb2.Quote], None]], QuoteFeed],
        *,
        timing: MonitorTiming = MonitorTiming(),
        webhook_for: Callable[[Alert], Awaitable[tuple[str, str] | None]] | None = None,
        on_event: Callable[[], None] = lambda: None,
        pruners: Sequence[Callable[[datetime], Awaitable[int]]] = (),
        calendar: ExchangeCalendar | None = None,
    ) -> None:
        self._engine = engine
        # The engine's calendar too: the trading date stored with a firing is the one the
        # database's once-per-trading-day check compares.
        self._calendar = calendar or us_options_calendar()
        self._alerts = alerts
        self._events = events
        self._event_service = event_service
        self._pubsub = pubsub
        self._clock = clock
        self._feed = quote_feed(self._on_quote)
        self._timing = timing
        self._webhook_for = webhook_for or _no_webhook
        self._on_event = on_event
        # Besides the events: whatever else is kept per event (webhook deliveries).
        self._pruners = [events.prune, *pruners]
        self._held: dict[str, Alert] = {}
        # Held alerts per symbol: the quote streams change only when a symbol comes or goes.
        self._symbols: Counter[str] = Counter()
        # Set (and replaced) whenever the held alerts change: what until_held waits on.
        self._held_changed = asyncio.Event()
        self._firing: set[str] = set()
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_FIRINGS)
        self._changed: asyncio.Queue[bytes] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self.fired = 0

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen for changes first (none is missed), then load the alerts and open quotes."""
        listening = asyncio.Event()
        self._tasks = [
            asyncio.create_task(
                listen_resubscribing(
                    self._pubsub, CHANGES_CHANNEL, self._changed.put_nowait, listening
                ),
                name="alert-changes",
            ),
            asyncio.create_task(self._apply_changes(), name="alert-apply-changes"),
            asyncio.create_task(self._sweep_expiry(), name="alert-expiry"),
            asyncio.create_task(self._prune(), name="alert-prune"),
        ]
        await listening.wait()
        active = await self._alerts.active_alerts()
        self._held = {a.id: a for a in active}
        self._symbols = Counter(a.symbol for a in active)
        self._engine.replace_all(spec_of(a) for a in active)
        self._feed.watch(set(self._symbols))

    async def stop(self) -> None:
        """Stop quotes, listeners and in-flight firings."""
        await self._feed.stop()
        tasks = [*self._tasks, *self._background]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks = []

    @property
    def feed(self) -> QuoteFeed:
        """The quote streams (tests wait on them)."""
        return self._feed

    def held(self, alert_id: str) -> bool:
        """Whether the engine evaluates this alert now."""
        return alert_id in self._held

    async def until_held(self, alert_id: str, held: bool = True) -> None:
        """Wait until the engine evaluates this alert (or, with held False, no longer does)."""
        while self.held(alert_id) != held:
            await self._held_changed.wait()

    # --- changes from any replica -------------------------------------------------------------

    async def announce(self, user_id: str, alert_id: str, alert: Alert | None) -> None:
        """Tell every replica's monitor that an alert changed (AlertService calls this)."""
        del alert
        await self._pubsub.publish(CHANGES_CHANNEL, f"{user_id}/{alert_id}".encode())

    async def _apply_changes(self) -> None:
        while True:
            payload = await self._changed.get()
            user_id, _, alert_id = payload.decode().partition("/")
            try:
                # The database is the truth: whatever the message said, read the alert now.
                self._hold(alert_id, await self._alerts.get(user_id, alert_id))
            except Exception as exc:
                log.warning("could not apply an alert change", alert=alert_id, error=str(exc))

    def _hold(self, alert_id: str, alert: Alert | None) -> None:
        changed = False
        previous = self._held.pop(alert_id, None)
        if previous is not None:
            changed |= self._release(previous.symbol)
        if alert is None or alert.state is not AlertState.ACTIVE:
            self._engine.remove(alert_id)
        else:
            self._held[alert_id] = alert
            changed |= self._symbols[alert.symbol] == 0
            self._symbols[alert.symbol] += 1
            if previous is None:
                self._engine.add(spec_of(alert))
            elif spec_of(previous) != spec_of(alert):
                self._engine.update(spec_of(alert))
        if changed:
            self._feed.watch(set(self._symbols))
        self._held_changed.set()
        self._held_changed = asyncio.Event()

    def _release(self, symbol: str) -> bool:
        """One alert fewer on `symbol`; True when it was the last."""
        self._symbols[symbol] -= 1
        if self._symbols[symbol] > 0:
            return False
        del self._symbols[symbol]
        return True

    # --- quotes and firings -------------------------------------------------------------------

    def _on_quote(self, quote: quote_pb2.Quote) -> None:
        for candidate in self._engine.evaluate(tick_from_quote(quote)):
            if candidate.alert_id in self._firing or candidate.alert_id not in self._held:
                continue
            self._firing.add(candidate.alert_id)
            self._spawn(self._fire(self._held[candidate.alert_id], candidate, quote))

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _fire(self, alert: Alert, candidate: Candidate, quote: quote_pb2.Quote) -> None:
        try:
            async with self._slots:
                webhook = await self._webhook(alert)
                now = self._clock.now()
                recorded = await self._events.fire(
                    Firing(
                        alert=alert,
                        fire_time=now,
                        trading_date=self._calendar.session_date(now),
                        trigger_values=trigger_values(quote, candidate),
                        message=message(alert, candidate, quote),
                        webhook=webhook,
                    )
                )
            if recorded is None:
                # Another replica fired it, or it changed: take the stored alert.
                self._hold(alert.id, await self._alerts.get(alert.user_id, alert.id))
                return
            fired, event = recorded
            self.fired += 1
            # The user's streams first: they are what the firing's latency is measured by.
            await self._event_service.publish(event)
            self._engine.mark_fired(alert.id, now)
            self._hold(alert.id, fired)
            self._on_event()
            await self.announce(alert.user_id, alert.id, fired)
        except Exception as exc:
            # The engine proposes it again on the next tick while it holds.
            log.warning("could not record an alert firing", alert=alert.id, error=str(exc))
        finally:
            self._firing.discard(alert.id)

    async def _webhook(self, alert: Alert) -> tuple[str, str] | None:
        # Where the webhook goes is never a reason not to record the firing: without an answer
        # the event is written without a delivery (the in-app stream carries it as always).
        try:
            return await self._webhook_for(alert)
        except Exception as exc:
            log.warning("could not choose an alert's webhook", alert=alert.id, error=str(exc))
            return None

    # --- time ---------------------------------------------------------------------------------

    async def _sweep_expiry(self) -> None:
        while True:
            try:
                now = self._clock.now()
                # The engine drops its expired alerts itself (they never fire after their
                # expire time); the database moves every armed one, disabled too, to EXPIRED.
                self._engine.expire_due(now)
                for alert in await self._events.expire_due(now):
                    await self.announce(alert.user_id, alert.id, alert)
            except Exception as exc:
                log.warning("alert expiry sweep failed", error=str(exc))
            await asyncio.sleep(self._timing.expiry_sweep.total_seconds())

    async def _prune(self) -> None:
        while True:
            cutoff: datetime = self._clock.now() - self._timing.retention
            for prune in self._pruners:
                try:
                    pruned = await prune(cutoff)
                except Exception as exc:
                    log.warning("pruning alert history failed", error=str(exc))
                else:
                    if pruned:
                        log.info("pruned alert history past its retention", rows=pruned)
            await asyncio.sleep(self._timing.prune_every.total_seconds())
