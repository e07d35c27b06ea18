"""The gRPC service config that makes channels retry UNAVAILABLE with exponential backoff."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

# Every OPTIX service plus health, so probes through the SDK retry too.
SERVICE_NAMES: tuple[str, ...] = (
    "optix.user.v1.UserService",
    "optix.marketdata.v1.MarketDataService",
    "optix.watchlist.v1.WatchlistService",
    "optix.brokerage.v1.BrokerageService",
    "optix.alert.v1.AlertService",
    "grpc.health.v1.Health",
)


@dataclass(frozen=True)
class RetryPolicy:
    """Transparent retries done by the gRPC core (below the SDK), only for UNAVAILABLE."""

    max_attempts: int = 4
    initial_backoff_s: float = 0.1
    max_backoff_s: float = 2.0
    backoff_multiplier: float = 2.0


def service_config(policy: RetryPolicy, services: Sequence[str] = SERVICE_NAMES) -> str:
    """The JSON for the `grpc.service_config` channel option."""
    config = {
        "methodConfig": [
            {
                "name": [{"service": name} for name in services],
                "retryPolicy": {
                    "maxAttempts": policy.max_attempts,
                    "initialBackoff": f"{policy.initial_backoff_s}s",
                    "maxBackoff": f"{policy.max_backoff_s}s",
                    "backoffMultiplier": policy.backoff_multiplier,
                    # Only UNAVAILABLE: the request did not reach a healthy server. A
                    # DEADLINE_EXCEEDED call may have done its work, so it is not retried.
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
    return json.dumps(config)


def channel_options(
    policy: RetryPolicy, extra: Sequence[tuple[str, str | int]] = ()
) -> list[tuple[str, str | int]]:
    """Channel options: retries on, the service config, keepalive for long streams."""
    return [
        ("grpc.enable_retries", 1),
        ("grpc.service_config", service_config(policy)),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        *extra,
    ]
