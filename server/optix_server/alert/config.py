"""Alert limits and secrets, read from OPTIX_ALERT_* variables by the slice itself."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from optix_server.infra.env import env_bool, env_int, env_secret


@dataclass(frozen=True)
class AlertSettings:
    """How many alerts a user may keep armed, how long events are kept, and the key that seals
    webhook signing secrets."""

    # Alerts in ACTIVE or DISABLED state per user.
    max_alerts_per_user: int = 200
    event_retention: timedelta = timedelta(days=90)
    # Webhook URLs resolving to loopback/private/link-local addresses: for local testing only.
    allow_private_webhooks: bool = False
    # 32+ bytes sealing webhook signing secrets; None: a key file under var/keys (one process).
    secret_key: bytes | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AlertSettings:
        """Read OPTIX_ALERT_MAX_ALERTS, OPTIX_ALERT_EVENT_RETENTION_DAYS,
        OPTIX_ALERT_ALLOW_PRIVATE_WEBHOOKS and OPTIX_ALERT_SECRET_KEY (base64)."""
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
        )
