"""Alert limits, secrets and webhook sending, read from OPTIX_ALERT_* variables by the slice
itself."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from optix_server.infra.env import env_bool, env_float, env_int, env_secret, env_str


@dataclass(frozen=True)
class WebhookSettings:
    """How the webhook sender calls receivers and retries them."""

    # The whole attempt (DNS, connect, TLS, request, response headers) must finish in this.
    timeout: timedelta = timedelta(seconds=3)
    # The n-th retry waits base * 2**(n-1), at most `backoff_cap`, less up to `jitter` of it.
    backoff_base: timedelta = timedelta(seconds=5)
    backoff_cap: timedelta = timedelta(hours=1)
    jitter: float = 0.2
    # Retries stop this long after the event fired (the firing writes `give_up_time` from it).
    max_age: timedelta = timedelta(hours=24)
    # How often a sender looks for due rows without a poke (retries, other replicas' events).
    poll_interval: timedelta = timedelta(seconds=2)
    # A claimed row is another sender's again after this, should its claimer die; it must be
    # far longer than `timeout` (from_env: at least two timeouts, by default ten or 60 s).
    lease: timedelta = timedelta(seconds=60)
    # Attempts in flight per sender.
    concurrency: int = 16
    # PEM file of the CAs receivers' certificates must chain to; None: the certifi bundle.
    ca_bundle: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WebhookSettings:
        """Read the OPTIX_ALERT_WEBHOOK_* variables (TIMEOUT_SECONDS, BACKOFF_BASE_SECONDS,
        BACKOFF_CAP_SECONDS, MAX_AGE_HOURS, POLL_INTERVAL_SECONDS, LEASE_SECONDS, CONCURRENCY,
        CA_BUNDLE)."""
        base = cls()

        def seconds(name: str, default: timedelta, minimum: float) -> timedelta:
            value = env_float(env, name, default.total_seconds(), minimum=minimum)
            return timedelta(seconds=value)

        timeout = seconds("OPTIX_ALERT_WEBHOOK_TIMEOUT_SECONDS", base.timeout, 0.1)
        return cls(
            timeout=timeout,
            backoff_base=seconds("OPTIX_ALERT_WEBHOOK_BACKOFF_BASE_SECONDS", base.backoff_base, 1),
            backoff_cap=seconds("OPTIX_ALERT_WEBHOOK_BACKOFF_CAP_SECONDS", base.backoff_cap, 1),
            max_age=timedelta(
                hours=env_float(
                    env,
                    "OPTIX_ALERT_WEBHOOK_MAX_AGE_HOURS",
                    base.max_age.total_seconds() / 3600,
                    minimum=0.01,
                )
            ),
            poll_interval=seconds(
                "OPTIX_ALERT_WEBHOOK_POLL_INTERVAL_SECONDS", base.poll_interval, 0.05
            ),
            # A lease that could end during an attempt would let two senders overlap.
            lease=seconds(
                "OPTIX_ALERT_WEBHOOK_LEASE_SECONDS",
                max(base.lease, 10 * timeout),
                2 * timeout.total_seconds(),
            ),
            concurrency=env_int(
                env, "OPTIX_ALERT_WEBHOOK_CONCURRENCY", base.concurrency, minimum=1
            ),
            ca_bundle=env_str(env, "OPTIX_ALERT_WEBHOOK_CA_BUNDLE", "") or None,
        )


@dataclass(frozen=True)
class AlertSettings:
    """How many alerts a user may keep armed, how long events are kept, the key that seals
    webhook signing secrets, and how webhooks are sent."""

    # Alerts in ACTIVE or DISABLED state per user.
    max_alerts_per_user: int = 200
    event_retention: timedelta = timedelta(days=90)
    # Webhook URLs resolving to loopback/private/link-local addresses: for local testing only.
    allow_private_webhooks: bool = False
    # 32+ bytes sealing webhook signing secrets; None: a key file under var/keys (one process).
    secret_key: bytes | None = None
    webhook: WebhookSettings = field(default_factory=WebhookSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AlertSettings:
        """Read OPTIX_ALERT_MAX_ALERTS, OPTIX_ALERT_EVENT_RETENTION_DAYS,
        OPTIX_ALERT_ALLOW_PRIVATE_WEBHOOKS, OPTIX_ALERT_SECRET_KEY (base64) and the
        OPTIX_ALERT_WEBHOOK_* sender settings."""
        base = cls()
        return cls(
            max_alerts_per_user=env_int(
                env, "OPTIX_ALERT_MAX_ALERTS", base.max_alerts_per_user, minimum=1
            ),
            event_retention=timedelta(
                days=env_int(
                    env,
                    "OPTIX_ALERT_EVENT_RETENTION_DAYS",
                    base.event_retention.days,
                    minimum=1,
                )
            ),
            allow_private_webhooks=env_bool(
                env, "OPTIX_ALERT_ALLOW_PRIVATE_WEBHOOKS", base.allow_private_webhooks
            ),
            secret_key=env_secret(env, "OPTIX_ALERT_SECRET_KEY"),
            webhook=WebhookSettings.from_env(env),
        )
