"""Where an alert's events are POSTed: the alert's own webhook, else its user's default one
(`optix.user.v1.NotificationPreferences.webhook_url`), read from the user service through its
typed stub (the internal GetUserWebhook, with the alert slice's service identity).

Answers are cached per user for `ttl` (bounded, least recently used evicted): a change to a
user's default webhook (new URL, rotated secret, cleared) reaches firings within `ttl`. A firing
past half the `ttl` refreshes the answer in the background while it uses the cached one, so the
firings of an active user do not wait on the user service. When the
user service cannot answer, the firing is never held back: it uses the user's last answer if it
is younger than `stale_for`, else it goes without a webhook (the event is written and streamed
as always, with no delivery), and the user service is not asked again for anyone for
`retry_after`, so a burst of firings during an outage does not wait on a dead service once per
firing (or once per user)."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import grpc

from optix.user.v1 import user_service_pb2
from optix_server.alert.domain import Alert
from optix_server.infra.crypto import SecretBox
from optix_server.infra.env import env_int
from optix_server.infra.logging import get_logger

if TYPE_CHECKING:
    from optix.user.v1.user_service_pb2_grpc import UserServiceAsyncStub

log = get_logger(__name__)

# (URL, secret sealed for the outbox row): what a firing writes, None for no delivery.
Webhook = tuple[str, str]


@dataclass(frozen=True)
class UserWebhookSettings:
    """How long answers of the user service are used, and how long it may take to answer."""

    ttl: timedelta = timedelta(seconds=10)
    stale_for: timedelta = timedelta(minutes=15)
    retry_after: timedelta = timedelta(seconds=5)
    timeout: timedelta = timedelta(seconds=2)
    max_users: int = 10_000

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> UserWebhookSettings:
        """Read OPTIX_ALERT_USER_WEBHOOK_* variables (defaults for anything unset)."""
        return cls(
            ttl=timedelta(
                seconds=env_int(env, "OPTIX_ALERT_USER_WEBHOOK_TTL_SECONDS", 10, minimum=0)
            ),
            stale_for=timedelta(
                seconds=env_int(env, "OPTIX_ALERT_USER_WEBHOOK_STALE_SECONDS", 900, minimum=0)
            ),
            max_users=env_int(env, "OPTIX_ALERT_USER_WEBHOOK_CACHE_USERS", 10_000, minimum=1),
        )


@dataclass(frozen=True)
class DefaultWebhook:
    """A user's default webhook: URL and signing secret in clear (kept in memory only)."""

    url: str
    secret: str

    def __repr__(self) -> str:
        return "DefaultWebhook(<hidden>)"


@dataclass
class _Entry:
    """What is known of one user: the last answer (None: no default webhook) and when."""

    value: DefaultWebhook | None
    # Monotonic seconds of the last answer; None when the user service never answered.
    answered_at: float | None
    # Monotonic seconds before which the user service is not asked again.
    ask_after: float
    # Monotonic seconds after which a firing asks again in the background, still using this
    # answer (refresh-ahead: a user whose alerts fire often never waits for the user service).
    refresh_after: float


class UserWebhooks:
    """The users' default webhooks, cached, as sealed outbox values for each firing."""

    def __init__(
        self,
        stub: Callable[[], UserServiceAsyncStub],
        secrets: SecretBox,
        settings: UserWebhookSettings = UserWebhookSettings(),
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stub = stub
        self._secrets = secrets
        self._settings = settings
        self._now = monotonic
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        # One lookup per user at a time: a burst of that user's firings shares it.
        self._lookups: dict[str, asyncio.Task[DefaultWebhook | None]] = {}
        # Monotonic seconds before which the user service is not asked at all (it just failed).
        self._down_until = float("-inf")
        self.lookups = 0
        self.failures = 0

    async def webhook_for(self, alert: Alert) -> Webhook | None:
        """Where `alert`'s event goes (URL, secret sealed with f"{user_id}/{alert_id}", as the
        sender opens it), or None: delivery is app-only, or no webhook applies."""
        if alert.webhook_disabled:
            return None
        if alert.webhook_url:
            # The alert's own URL always wins, with its own secret.
            if alert.sealed_webhook_secret is None:
                return None
            return alert.webhook_url, alert.sealed_webhook_secret
        default = await self.default(alert.user_id)
        if default is None:
            return None
        return default.url, self._secrets.seal(default.secret, f"{alert.user_id}/{alert.id}")

    async def default(self, user_id: str) -> DefaultWebhook | None:
        """The user's default webhook as last known within the rules above."""
        entry = self._entries.get(user_id)
        now = self._now()
        if entry is not None:
            self._entries.move_to_end(user_id)
            if now < entry.ask_after:
                if now >= entry.refresh_after and now >= self._down_until:
                    self._start_lookup(user_id)
                return self._usable(entry, now)
        if now < self._down_until:
            return self._usable(entry, now) if entry is not None else None
        # Shielded: a firing cancelled at shutdown does not cancel the others' shared lookup.
        return await asyncio.shield(self._start_lookup(user_id))

    def _start_lookup(self, user_id: str) -> asyncio.Task[DefaultWebhook | None]:
        """The user's lookup in flight, started if there is none."""
        task = self._lookups.get(user_id)
        if task is None:
            task = asyncio.ensure_future(self._lookup(user_id))
            self._lookups[user_id] = task
            task.add_done_callback(lambda _: self._lookups.pop(user_id, None))
        return task

    def forget(self, user_id: str) -> None:
        """Drop what is known of a user: the next firing asks the user service."""
        self._entries.pop(user_id, None)

    def _usable(self, entry: _Entry, now: float) -> DefaultWebhook | None:
        if entry.answered_at is None:
            return None
        if now - entry.answered_at > self._settings.stale_for.total_seconds():
            return None
        return entry.value

    async def _lookup(self, user_id: str) -> DefaultWebhook | None:
        self.lookups += 1
        try:
            reply = await self._stub().GetUserWebhook(
                user_service_pb2.GetUserWebhookRequest(name=f"users/{user_id}"),
                timeout=self._settings.timeout.total_seconds(),
            )
        except Exception as exc:
            if isinstance(exc, grpc.aio.AioRpcError) and exc.code() is grpc.StatusCode.NOT_FOUND:
                # The account is gone: nothing to deliver to.
                return self._store(user_id, None)
            return self._failed(user_id, exc)
        value = (
            DefaultWebhook(reply.webhook_url, reply.webhook_signing_secret)
            if reply.webhook_url and reply.webhook_signing_secret
            else None
        )
        return self._store(user_id, value)

    def _put(self, user_id: str, entry: _Entry) -> None:
        self._entries[user_id] = entry
        self._entries.move_to_end(user_id)
        while len(self._entries) > self._settings.max_users:
            self._entries.popitem(last=False)

    def _store(self, user_id: str, value: DefaultWebhook | None) -> DefaultWebhook | None:
        now, ttl = self._now(), self._settings.ttl.total_seconds()
        self._put(user_id, _Entry(value, now, now + ttl, now + ttl / 2))
        return value

    def _failed(self, user_id: str, exc: Exception) -> DefaultWebhook | None:
        self.failures += 1
        now = self._now()
        self._down_until = now + self._settings.retry_after.total_seconds()
        code = exc.code().name if isinstance(exc, grpc.aio.AioRpcError) else type(exc).__name__
        previous = self._entries.get(user_id)
        ask_after = now + self._settings.retry_after.total_seconds()
        entry = _Entry(
            previous.value if previous else None,
            previous.answered_at if previous else None,
            ask_after,
            ask_after,
        )
        self._put(user_id, entry)
        value = self._usable(entry, now)
        # Never the URL or the secret; the user id says whose delivery is affected.
        log.warning(
            "could not read a user's default webhook; firing with the last known one"
            if value is not None
            else "could not read a user's default webhook; firing without a webhook",
            user_id=user_id,
            error=code,
        )
        return value
