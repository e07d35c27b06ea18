"""Client settings shared by the async and sync clients."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from optix_client.retry import RetryPolicy
from optix_client.session import Clock, utc_now


@dataclass(frozen=True)
class ClientOptions:
    """Deadlines, retries, token refresh margin and transport security for one client."""

    # Unary calls without an explicit timeout get this deadline; streams get none.
    default_timeout: float | None = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # Refresh an access token this long before it expires.
    refresh_margin: timedelta = timedelta(seconds=30)
    # TLS root certificates (PEM) for a secure channel; None means plaintext (h2c).
    secure: bool = False
    root_certificates: bytes | None = None
    user_agent: str = "optix-python-sdk/0.1"
    extra_channel_options: Sequence[tuple[str, str | int]] = ()
    clock: Clock = utc_now
