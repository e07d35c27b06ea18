"""Process settings, read once from OPTIX_* environment variables and passed down explicitly."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from optix_server.infra.auth.config import AuthSettings
from optix_server.infra.env import SettingsError, env_float, env_int, env_str
from optix_server.infra.gc_policy import DEFAULT_YOUNG_THRESHOLD
from optix_server.infra.peer import TrustedProxies

ALL_SERVICES: tuple[str, ...] = ("user", "marketdata", "watchlist", "brokerage", "alert")


def parse_services(raw: str) -> tuple[str, ...]:
    """Parse a comma-separated service list ("all" or e.g. "user,marketdata")."""
    names = [part.strip().lower() for part in raw.split(",") if part.strip()]
    if not names or names == ["all"]:
        return ALL_SERVICES
    unknown = [n for n in names if n not in ALL_SERVICES]
    if unknown:
        raise SettingsError(
            f"unknown service(s) {', '.join(unknown)}; choose from {', '.join(ALL_SERVICES)}"
        )
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class Settings:
    """Everything a process needs to know about its environment, read once at start-up."""

    host: str = "127.0.0.1"
    port: int = 50051
    services: tuple[str, ...] = ALL_SERVICES
    var_dir: Path = Path("var")
    # None means the embedded SQLite database under var_dir.
    database_url_override: str | None = None
    redis_url: str | None = None
    # Prefix for every Redis key and channel, so environments can share one Redis.
    redis_prefix: str = "optix:"
    log_level: str = "INFO"
    log_format: str = "console"
    # Access log: "all" calls, only "errors" (non-OK) or "off"; a fraction of OK calls kept.
    # Failed calls by default: a line per OK call halved a small call's throughput in the
    # edge bench (a structured line is dearer than the call); `make run` logs all.
    access_log: str = "errors"
    access_log_sample: float = 1.0
    shutdown_grace_seconds: float = 5.0
    # After SIGTERM, how long the replica keeps serving while its health says NOT_SERVING, so
    # the edge (Envoy's health checks) stops routing to it before it stops accepting calls.
    # 0 for a lone process; behind Envoy, more than its health-check interval x threshold.
    drain_seconds: float = 0.0
    # How long a call may take to send its request message, and the longest a unary call may
    # run when its client set no deadline or a longer one (the edge's unary deadline).
    request_message_timeout_seconds: float = 10.0
    max_unary_deadline_seconds: float = 30.0
    max_message_bytes: int = 4 * 1024 * 1024
    # Allocations between young-generation collections once serving; 0 keeps CPython's default
    # (see infra/gc_policy.py for why it is raised).
    gc_young_threshold: int = DEFAULT_YOUNG_THRESHOLD
    # Port of the Prometheus endpoint (GET /metrics): None is off, 0 any free port; served on
    # metrics_host, else on host.
    metrics_port: int | None = None
    metrics_host: str | None = None
    # Addresses of other services for service-to-service calls (default: this process).
    service_addresses: Mapping[str, str] = field(default_factory=dict)
    # Proxies (the Envoy edge) whose x-forwarded-for entries name the client for per-address
    # limits; empty trusts nobody. List only hosts that append the address they saw.
    trusted_proxies: TrustedProxies = field(default_factory=TrustedProxies)
    # Token signing/verification (OPTIX_AUTH_*), shared by every service's auth interceptor.
    auth: AuthSettings = field(default_factory=AuthSettings)
    # Every OPTIX_* variable seen at start-up: each slice reads its own settings from it
    # (OPTIX_USER_*, OPTIX_MARKETDATA_*, ...), so this module depends on no slice.
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL in use: the override, or SQLite under var_dir."""
        if self.database_url_override:
            return self.database_url_override
        return f"sqlite+aiosqlite:///{(self.var_dir / 'optix.db').as_posix()}"

    @property
    def listen_address(self) -> str:
        """host:port the gRPC server binds."""
        return f"{self.host}:{self.port}"

    @property
    def metrics_bind_host(self) -> str:
        """The address the metrics endpoint binds."""
        return self.metrics_host or self.host

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read settings from OPTIX_* variables (os.environ by default)."""
        env = os.environ if env is None else env
        log_format = env_str(env, "OPTIX_LOG_FORMAT", "console").lower()
        if log_format not in {"console", "json"}:
            raise SettingsError(f"OPTIX_LOG_FORMAT must be console or json, got {log_format!r}")
        access_log = env_str(env, "OPTIX_ACCESS_LOG", "errors").lower()
        if access_log not in {"all", "errors", "off"}:
            raise SettingsError(f"OPTIX_ACCESS_LOG must be all, errors or off, got {access_log!r}")
        access_log_sample = env_float(env, "OPTIX_ACCESS_LOG_SAMPLE", 1.0, minimum=0)
        if access_log_sample > 1:
            raise SettingsError(f"OPTIX_ACCESS_LOG_SAMPLE must be 0..1, got {access_log_sample:g}")
        addresses = {
            svc: env[f"OPTIX_{svc.upper()}_ADDRESS"]
            for svc in ALL_SERVICES
            if env.get(f"OPTIX_{svc.upper()}_ADDRESS")
        }
        return cls(
            host=env_str(env, "OPTIX_HOST", "127.0.0.1"),
            port=env_int(env, "OPTIX_PORT", 50051, minimum=0),
            services=parse_services(env_str(env, "OPTIX_SERVICES", "all")),
            var_dir=Path(env_str(env, "OPTIX_VAR_DIR", "var")),
            database_url_override=env.get("OPTIX_DATABASE_URL") or None,
            redis_url=_redis_url(env.get("OPTIX_REDIS_URL") or None),
            redis_prefix=env_str(env, "OPTIX_REDIS_PREFIX", "optix:"),
            log_level=env_str(env, "OPTIX_LOG_LEVEL", "INFO").upper(),
            log_format=log_format,
            access_log=access_log,
            access_log_sample=access_log_sample,
            shutdown_grace_seconds=env_float(env, "OPTIX_SHUTDOWN_GRACE_SECONDS", 5.0, minimum=0),
            drain_seconds=env_float(env, "OPTIX_DRAIN_SECONDS", 0.0, minimum=0),
            request_message_timeout_seconds=env_float(
                env, "OPTIX_REQUEST_MESSAGE_TIMEOUT_S", 10.0, minimum=0.001
            ),
            max_unary_deadline_seconds=env_float(
                env, "OPTIX_MAX_UNARY_DEADLINE_S", 30.0, minimum=0.001
            ),
            max_message_bytes=env_int(
                env, "OPTIX_MAX_MESSAGE_BYTES", 4 * 1024 * 1024, minimum=1024
            ),
            gc_young_threshold=env_int(
                env, "OPTIX_GC_YOUNG_THRESHOLD", DEFAULT_YOUNG_THRESHOLD, minimum=0
            ),
            metrics_port=_metrics_port(env),
            metrics_host=env.get("OPTIX_METRICS_HOST", "").strip() or None,
            service_addresses=addresses,
            trusted_proxies=TrustedProxies.parse(env.get("OPTIX_TRUSTED_PROXIES", "")),
            auth=AuthSettings.from_env(env),
            env={key: value for key, value in env.items() if key.startswith("OPTIX_")},
        )


def _metrics_port(env: Mapping[str, str]) -> int | None:
    if not env.get("OPTIX_METRICS_PORT", "").strip():
        return None
    port = env_int(env, "OPTIX_METRICS_PORT", 0, minimum=0)
    if port > 65535:
        raise SettingsError(f"OPTIX_METRICS_PORT must be a port (0..65535), got {port}")
    return port


def _redis_url(url: str | None) -> str | None:
    """OPTIX_REDIS_URL, refused (without echoing it: it may carry a password) unless it is a
    redis://, rediss:// or unix:// URL with a host (or a socket path), a port and db number."""
    if url is None:
        return None
    problem = "OPTIX_REDIS_URL must look like redis://[:password@]host[:port][/db]"
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError when not a number in range
    except ValueError:
        raise SettingsError(problem) from None
    if parts.scheme in {"redis", "rediss"}:
        db = parts.path.lstrip("/")
        if not parts.hostname or (db and not db.isdigit()) or (port is not None and port < 1):
            raise SettingsError(problem)
    elif parts.scheme != "unix" or not parts.path:
        raise SettingsError(problem)
    return url
