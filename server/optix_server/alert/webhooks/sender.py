"""The webhook sender: a background loop that claims due outbox rows, POSTs each event signed
to its URL, and records the attempt and its outcome; any replica may run one."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import ssl
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx

from optix_server.alert.config import AlertSettings
from optix_server.alert.domain import DeliveryState
from optix_server.alert.webhooks.body import CONTENT_TYPE, event_body
from optix_server.alert.webhooks.delivery import AttemptRecord, AttemptResult, Delivery
from optix_server.alert.webhooks.outbox import WebhookOutbox
from optix_server.alert.webhooks.retry import RetryPolicy
from optix_server.alert.webhooks.signing import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    signature_header,
)
from optix_server.alert.webhooks.transport import PinnedClient, webhook_ssl_context
from optix_server.common.webhooks import check_webhook_url, resolve_webhook_host
from optix_server.infra.auth.clock import Clock
from optix_server.infra.crypto import SecretBox
from optix_server.infra.db import Database
from optix_server.infra.errors import ViolationCollector
from optix_server.infra.logging import get_logger

log = get_logger(__name__)

AttemptListener = Callable[[AttemptRecord], None]


class WebhookSender:
    """Delivers the webhook outbox between `start()` and `stop()`: wakes on `notify()` or every
    poll interval, keeps at most `settings.webhook.concurrency` attempts in flight, and leaves
    everything it has not finished in the table for the next sender (leases expire)."""

    def __init__(
        self,
        database: Database,
        secrets: SecretBox,
        settings: AlertSettings,
        clock: Clock,
        *,
        ssl_context: ssl.SSLContext | None = None,
        rng: random.Random | None = None,
        on_attempt: AttemptListener | None = None,
    ) -> None:
        self._outbox = WebhookOutbox(database)
        self._secrets = secrets
        self._settings = settings.webhook
        self._allow_private = settings.allow_private_webhooks
        self._clock = clock
        self._ssl = ssl_context or webhook_ssl_context(self._settings.ca_bundle)
        self._policy = RetryPolicy.of(self._settings)
        self._rng = rng or random.Random()
        self._listeners: list[AttemptListener] = [on_attempt] if on_attempt else []
        # Lease owner: unique per sender, so a restarted process never mistakes a dead
        # process's lease for its own.
        self.owner = uuid.uuid4().hex
        self._http: PinnedClient | None = None
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        # Set when the last claim filled every free slot: a finished attempt should claim more.
        self._saturated = False
        self._stopping = False

    def notify(self) -> None:
        """Look for due rows now (call after committing a firing that wrote one)."""
        self._wake.set()

    def listen(self, listener: AttemptListener) -> None:
        """Also call `listener` with every recorded attempt (metrics, tests)."""
        self._listeners.append(listener)

    def start(self) -> None:
        """Start the background loop."""
        if self._loop_task is None:
            self._stopping = False
            self._loop_task = asyncio.create_task(self._run(), name="alert-webhook-sender")

    async def stop(self) -> None:
        """Stop claiming, let attempts in flight finish (each is bounded by the timeout), then
        close the HTTP client. Rows left over are retried by any sender once their lease ends."""
        # The timeout plus a margin for recording the outcome.
        grace = self._settings.timeout.total_seconds() + 2.0
        if self._loop_task is not None:
            # Asked, not cancelled: a claim under way completes and its rows get attempted,
            # rather than staying leased to no one until the lease ends.
            self._stopping = True
            self._wake.set()
            await _finish([self._loop_task], grace)
            self._loop_task = None
        await _finish(list(self._inflight), grace)
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def run_once(self) -> int:
        """Claim what is due now (up to the concurrency), attempt it all, and answer how many
        rows were attempted (tests, and draining on demand)."""
        claimed = await self._claim(self._settings.concurrency)
        await asyncio.gather(*(self._attempt(delivery) for delivery in claimed))
        return len(claimed)

    async def _claim(self, limit: int) -> list[Delivery]:
        return await self._outbox.claim(self.owner, self._clock.now(), limit, self._settings.lease)

    async def _run(self) -> None:
        poll = self._settings.poll_interval.total_seconds()
        while not self._stopping:
            self._wake.clear()
            free = self._settings.concurrency - len(self._inflight)
            if free > 0:
                try:
                    claimed = await self._claim(free)
                except Exception:
                    # The database may be away for a moment; the rows wait in it.
                    log.exception("claiming webhook deliveries failed")
                    claimed = []
                self._saturated = len(claimed) == free
                for delivery in claimed:
                    task = asyncio.create_task(self._attempt(delivery))
                    self._inflight.add(task)
                    task.add_done_callback(self._finished)
                if self._saturated:
                    # More may be due: claim again as soon as a slot frees up.
                    continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), poll)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        if self._saturated:
            self._wake.set()

    async def _attempt(self, delivery: Delivery) -> None:
        attempt_time = self._clock.now()
        started = time.monotonic()
        try:
            result = await self._send(delivery, attempt_time)
        except Exception as exc:
            # A bug here must not skip the record: the row would be retried forever, past
            # its give-up time. It counts as a failed attempt instead.
            log.exception(
                "webhook attempt raised", user_id=delivery.user_id, event_id=delivery.event_id
            )
            result = AttemptResult(None, f"internal error: {type(exc).__name__}")
        result = dataclasses.replace(result, duration=timedelta(seconds=time.monotonic() - started))
        try:
            outcome = self._policy.outcome(
                result,
                failures=delivery.attempts + 1,
                now=self._clock.now(),
                give_up_time=delivery.give_up_time,
                rng=self._rng,
            )
            record = await self._outbox.record(delivery, self.owner, attempt_time, result, outcome)
        except Exception:
            # Unrecorded (the database is away?), the row stays leased until its lease ends,
            # then is tried again.
            log.exception(
                "recording a webhook attempt failed",
                user_id=delivery.user_id,
                event_id=delivery.event_id,
            )
            return
        if record is None:
            log.warning(
                "webhook lease lost before the attempt was recorded",
                user_id=delivery.user_id,
                event_id=delivery.event_id,
            )
            return
        self._log(record)
        for listener in self._listeners:
            listener(record)

    async def _send(self, delivery: Delivery, at: datetime) -> AttemptResult:
        """One attempt; never raises for what a receiver or the network does."""
        if delivery.event is None:
            return AttemptResult(None, "the event no longer exists", permanent=True)
        problems = ViolationCollector()
        check_webhook_url(delivery.url, "url", problems)
        if problems.violations:
            return AttemptResult(None, "the URL is not a usable https:// URL", permanent=True)
        secret = self._secret(delivery)
        if secret is None:
            return AttemptResult(None, "the signing secret cannot be opened", permanent=True)
        body = event_body(delivery.event)
        headers = {
            "Content-Type": CONTENT_TYPE,
            EVENT_ID_HEADER: str(delivery.event_id),
            SIGNATURE_HEADER: signature_header(secret, body, int(at.timestamp())),
        }
        timeout = self._settings.timeout.total_seconds()
        try:
            # One deadline for the whole attempt, DNS included: a slow-drip answer cannot
            # hold a slot longer than the timeout.
            async with asyncio.timeout(timeout):
                addresses, refused = await resolve_webhook_host(
                    delivery.url, allow_private=self._allow_private
                )
                if refused is not None:
                    # A name that does not resolve may come back; one that resolves to a
                    # refused address is a rebinding or a misconfiguration: no retry.
                    return AttemptResult(None, refused, permanent=bool(addresses))
                status = await self._client().post(delivery.url, addresses, headers, body)
        except (TimeoutError, httpx.TimeoutException):
            return AttemptResult(None, f"no response within {timeout:g} s")
        except httpx.HTTPError as exc:
            return AttemptResult(None, f"{type(exc).__name__}: {exc}")
        if 300 <= status < 400:
            return AttemptResult(status, f"HTTP {status}: redirects are not followed")
        if not 200 <= status < 300:
            return AttemptResult(status, f"HTTP {status}")
        return AttemptResult(status, None)

    def _secret(self, delivery: Delivery) -> str | None:
        # The alert's current secret while it has one (a rotation takes effect at once), else
        # the one the event fired with; both are sealed for the alert.
        context = f"{delivery.user_id}/{delivery.alert_id}"
        for sealed in (delivery.sealed_alert_secret, delivery.sealed_snapshot_secret):
            if sealed:
                secret = self._secrets.open(sealed, context)
                if secret is not None:
                    return secret
        return None

    def _client(self) -> PinnedClient:
        if self._http is None:
            self._http = PinnedClient(self._ssl, self._settings.timeout.total_seconds())
        return self._http

    def _log(self, record: AttemptRecord) -> None:
        # Never the URL (it may carry a token), the secret or the signature.
        fields = {
            "user_id": record.user_id,
            "event_id": record.event_id,
            "attempt": record.attempt,
            "status": record.status,
        }
        if record.state is DeliveryState.DELIVERED:
            log.info("webhook delivered", **fields)
        elif record.state is DeliveryState.FAILED:
            log.warning("webhook delivery failed for good", error=record.error, **fields)
        else:
            log.info(
                "webhook attempt failed; will retry",
                error=record.error,
                next_attempt_time=record.next_attempt_time,
                **fields,
            )


async def _finish(tasks: list[asyncio.Task[None]], grace: float) -> None:
    """Wait up to `grace` seconds for `tasks`, then cancel what is left."""
    if not tasks:
        return
    _, late = await asyncio.wait(tasks, timeout=grace)
    for task in late:
        task.cancel()
    if late:
        await asyncio.wait(late)
