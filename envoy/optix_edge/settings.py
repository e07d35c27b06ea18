"""Edge settings: what varies between a laptop, a test and a deployment, read from OPTIX_ENVOY_*."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from optix_server.infra.env import SettingsError, env_float, env_int, env_str
from optix_server.infra.settings import ALL_SERVICES

# The five services, by the short name used in their proto package optix.<name>.v1.
SERVICE_NAMES: tuple[str, ...] = ALL_SERVICES
DEFAULT_UPSTREAM = "127.0.0.1:50051"
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
# Browsers on a developer's machine (the demo page) may call the edge from any local port.
DEFAULT_CORS_ORIGIN_REGEX = r"^https?://(localhost|127\.0\.0\.1|\[::1\])(:[0-9]+)?$"


def _seconds(env: Mapping[str, str], name: str, default: timedelta) -> timedelta:
    return timedelta(seconds=env_float(env, name, default.total_seconds(), minimum=0.001))


@dataclass(frozen=True)
class Upstream:
    """A host:port an Envoy cluster sends traffic to."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Upstream:
        """Parse `host:port` (IPv6 hosts in brackets)."""
        host, sep, port = text.strip().rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not _valid_host(host):
            raise ValueError(f"expected host:port, got {text!r}")
        return cls(host=host.strip("[]"), port=int(port))


def _valid_host(host: str) -> bool:
    """A DNS name or IPv4 literal, or an IPv6 literal in brackets."""
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return False
        return True
    return bool(_HOST.fullmatch(host))


def parse_upstreams(name: str, text: str) -> tuple[Upstream, ...]:
    """The replicas of one upstream, `host:port[,host:port...]`; a malformed or empty list is
    a SettingsError naming the variable (one line, at start-up, not "no healthy upstream"
    at run time)."""
    items = text.split(",")
    try:
        upstreams = tuple(Upstream.parse(item) for item in items)
    except ValueError as exc:
        raise SettingsError(f"{name}: {exc} (a list is host:port,host:port)") from None
    if len(set(upstreams)) != len(upstreams):
        raise SettingsError(f"{name}: {text!r} lists an address twice")
    return upstreams


@dataclass(frozen=True)
class EdgeSettings:
    """Everything the generated bootstrap depends on; defaults are the committed envoy.yaml."""

    listen_host: str = "127.0.0.1"
    listen_port: int = 8080
    admin_port: int = 9901
    # Per service short name -> its replicas; the default ones also serve health and reflection.
    upstreams: Mapping[str, tuple[Upstream, ...]] = field(default_factory=dict)
    default_upstream: tuple[Upstream, ...] = field(
        default_factory=lambda: (Upstream.parse(DEFAULT_UPSTREAM),)
    )
    unary_timeout: timedelta = timedelta(seconds=30)
    # Quiet streams carry heartbeats (15 s by default), so 5 minutes only ends dead ones.
    stream_idle_timeout: timedelta = timedelta(minutes=5)
    # How long the edge waits for a request's headers, then for its whole body.
    request_headers_timeout: timedelta = timedelta(seconds=10)
    request_timeout: timedelta = timedelta(seconds=10)
    max_request_bytes: int = 4 * 1024 * 1024
    # Request headers larger than this are refused at the edge (the server allows more).
    max_request_headers_kb: int = 32
    max_streams_per_connection: int = 1000
    # Token bucket shared by all connections: `rate_limit_burst` tokens, refilled with
    # `rate_limit_per_second` tokens every `rate_limit_interval`.
    rate_limit_per_second: int = 5000
    rate_limit_burst: int = 10000
    rate_limit_interval: timedelta = timedelta(seconds=1)
    # Token bucket per client address (the TCP peer the edge sees), on top of the shared one.
    client_rate_limit_per_second: int = 500
    client_rate_limit_burst: int = 1000
    cors_origins: tuple[str, ...] = ()
    health_check_interval: timedelta = timedelta(seconds=5)
    max_downstream_connections: int = 50_000

    # Unary calls that never reached a replica (connect failure, refused or reset stream) are
    # retried on another, and reads also on UNAVAILABLE (a replica draining or a dependency
    # blip); retries stay within this share of the calls in flight.
    retries: int = 2
    retry_budget_percent: float = 20.0

    def upstream_for(self, service: str) -> tuple[Upstream, ...]:
        """The replicas of one service, falling back to the default upstream's."""
        return self.upstreams.get(service, self.default_upstream)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> EdgeSettings:
        """Read OPTIX_ENVOY_* variables; anything unset keeps its default."""
        base = cls()
        default = parse_upstreams(
            "OPTIX_ENVOY_UPSTREAM_DEFAULT",
            env.get("OPTIX_ENVOY_UPSTREAM_DEFAULT", DEFAULT_UPSTREAM),
        )
        upstreams = {
            name: parse_upstreams(key, env[key])
            for name in SERVICE_NAMES
            if (key := f"OPTIX_ENVOY_UPSTREAM_{name.upper()}") in env
        }
        origins = tuple(
            o.strip() for o in env.get("OPTIX_ENVOY_CORS_ORIGINS", "").split(",") if o.strip()
        )
        return cls(
            listen_host=env_str(env, "OPTIX_ENVOY_LISTEN_HOST", base.listen_host),
            listen_port=env_int(env, "OPTIX_ENVOY_LISTEN_PORT", base.listen_port, minimum=1),
            admin_port=env_int(env, "OPTIX_ENVOY_ADMIN_PORT", base.admin_port, minimum=1),
            upstreams=upstreams,
            default_upstream=default,
            unary_timeout=_seconds(env, "OPTIX_ENVOY_UNARY_TIMEOUT_S", base.unary_timeout),
            request_headers_timeout=_seconds(
                env, "OPTIX_ENVOY_REQUEST_HEADERS_TIMEOUT_S", base.request_headers_timeout
            ),
            request_timeout=_seconds(env, "OPTIX_ENVOY_REQUEST_TIMEOUT_S", base.request_timeout),
            max_request_bytes=env_int(
                env, "OPTIX_ENVOY_MAX_REQUEST_BYTES", base.max_request_bytes, minimum=1
            ),
            rate_limit_per_second=env_int(
                env, "OPTIX_ENVOY_RATE_LIMIT_RPS", base.rate_limit_per_second, minimum=1
            ),
            rate_limit_burst=env_int(
                env, "OPTIX_ENVOY_RATE_LIMIT_BURST", base.rate_limit_burst, minimum=1
            ),
            rate_limit_interval=_seconds(
                env, "OPTIX_ENVOY_RATE_LIMIT_INTERVAL_S", base.rate_limit_interval
            ),
            client_rate_limit_per_second=env_int(
                env,
                "OPTIX_ENVOY_CLIENT_RATE_LIMIT_RPS",
                base.client_rate_limit_per_second,
                minimum=1,
            ),
            client_rate_limit_burst=env_int(
                env, "OPTIX_ENVOY_CLIENT_RATE_LIMIT_BURST", base.client_rate_limit_burst, minimum=1
            ),
            cors_origins=origins,
            health_check_interval=_seconds(
                env, "OPTIX_ENVOY_HEALTH_CHECK_INTERVAL_S", base.health_check_interval
            ),
            retries=env_int(env, "OPTIX_ENVOY_RETRIES", base.retries, minimum=0),
            retry_budget_percent=env_float(
                env, "OPTIX_ENVOY_RETRY_BUDGET_PERCENT", base.retry_budget_percent, minimum=0.0
            ),
        )
