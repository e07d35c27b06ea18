"""Brokerage connector settings, read from OPTIX_BROKERAGE_* variables by the slice itself."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

from optix_server.brokerage.tokens import KEY_ID_PATTERN, MIN_KEY_BYTES, TokenKey
from optix_server.infra.env import SettingsError, env_bool, env_float, env_int, env_str

SCHWAB_OAUTH_URL = "https://api.schwabapi.com/v1/oauth"
SCHWAB_TRADER_URL = "https://api.schwabapi.com/trader/v1"


@dataclass(frozen=True)
class SchwabSettings:
    """The Schwab app OPTIX connects through (Trader API, Accounts and Trading product)."""

    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    # Registered callback URLs, exact; the first is the default for StartConnection.
    redirect_uris: tuple[str, ...] = ()
    oauth_url: str = SCHWAB_OAUTH_URL
    trader_url: str = SCHWAB_TRADER_URL
    # Schwab's documented budget per app; every replica together stays under it when the
    # slice hands the connector a shared limiter.
    requests_per_minute: int = 120
    # Schwab's guide does not list PKCE; OAuth servers ignore parameters they do not know
    # (RFC 6749 section 3.1), so sending it costs nothing and protects where it is enforced.
    pkce: bool = True
    scope: str = "readonly"
    timeout_seconds: float = 10.0
    max_attempts: int = 5
    # Schwab refresh tokens die 7 days after the sign-in; refreshing does not extend them.
    refresh_token_lifetime: timedelta = timedelta(days=7)

    @property
    def enabled(self) -> bool:
        """Whether new connections can be made: credentials and a redirect URI configured."""
        return bool(self.client_id and self.client_secret and self.redirect_uris)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SchwabSettings:
        """Read OPTIX_BROKERAGE_SCHWAB_{CLIENT_ID, CLIENT_SECRET, REDIRECT_URIS (comma-separated),
        OAUTH_URL, TRADER_URL, REQUESTS_PER_MINUTE, PKCE, SCOPE, TIMEOUT_SECONDS, MAX_ATTEMPTS,
        REFRESH_TOKEN_DAYS}."""
        base = cls()
        prefix = "OPTIX_BROKERAGE_SCHWAB_"
        redirect_uris = tuple(
            u.strip() for u in env.get(prefix + "REDIRECT_URIS", "").split(",") if u.strip()
        )
        for uri in redirect_uris:
            _require_url(prefix + "REDIRECT_URIS", uri)
        oauth_url = env_str(env, prefix + "OAUTH_URL", base.oauth_url).rstrip("/")
        trader_url = env_str(env, prefix + "TRADER_URL", base.trader_url).rstrip("/")
        _require_url(prefix + "OAUTH_URL", oauth_url)
        _require_url(prefix + "TRADER_URL", trader_url)
        return cls(
            client_id=env_str(env, prefix + "CLIENT_ID", ""),
            client_secret=env_str(env, prefix + "CLIENT_SECRET", ""),
            redirect_uris=redirect_uris,
            oauth_url=oauth_url,
            trader_url=trader_url,
            requests_per_minute=env_int(
                env, prefix + "REQUESTS_PER_MINUTE", base.requests_per_minute, minimum=1
            ),
            pkce=env_bool(env, prefix + "PKCE", base.pkce),
            scope=env_str(env, prefix + "SCOPE", base.scope),
            timeout_seconds=env_float(
                env, prefix + "TIMEOUT_SECONDS", base.timeout_seconds, minimum=0.1
            ),
            max_attempts=env_int(env, prefix + "MAX_ATTEMPTS", base.max_attempts, minimum=1),
            refresh_token_lifetime=timedelta(
                days=env_int(
                    env, prefix + "REFRESH_TOKEN_DAYS", base.refresh_token_lifetime.days, minimum=1
                )
            ),
        )


@dataclass(frozen=True)
class ConnectorSettings:
    """Which providers this server offers, and the keys sealing their tokens at rest."""

    schwab: SchwabSettings = field(default_factory=SchwabSettings)
    paper_enabled: bool = True
    # First is current (seals); all open. Empty: the slice falls back to a local key file.
    token_keys: tuple[TokenKey, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ConnectorSettings:
        """Read the OPTIX_BROKERAGE_SCHWAB_* variables, OPTIX_BROKERAGE_PAPER_ENABLED and
        OPTIX_BROKERAGE_TOKEN_KEYS ("kid1:base64,kid2:base64", current first)."""
        return cls(
            schwab=SchwabSettings.from_env(env),
            paper_enabled=env_bool(env, "OPTIX_BROKERAGE_PAPER_ENABLED", True),
            token_keys=parse_token_keys(env.get("OPTIX_BROKERAGE_TOKEN_KEYS", "")),
        )


def parse_token_keys(raw: str, name: str = "OPTIX_BROKERAGE_TOKEN_KEYS") -> tuple[TokenKey, ...]:
    """Parse "kid1:base64,kid2:base64" (current key first); the messages never echo key bytes."""
    keys: list[TokenKey] = []
    for position, entry in enumerate((e.strip() for e in raw.split(",")), start=1):
        if not entry:
            continue
        key_id, sep, encoded = entry.partition(":")
        key_id = key_id.strip()
        if not sep or not KEY_ID_PATTERN.match(key_id):
            raise SettingsError(
                f"{name} entry {position} must be 'keyid:base64' with a key id of 1-32 "
                "letters, digits, '_' or '-'"
            )
        try:
            secret = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise SettingsError(f"{name} key {key_id!r} is not valid base64") from None
        if len(secret) < MIN_KEY_BYTES:
            raise SettingsError(f"{name} key {key_id!r} must decode to >= {MIN_KEY_BYTES} bytes")
        if any(k.key_id == key_id for k in keys):
            raise SettingsError(f"{name} names key id {key_id!r} twice")
        keys.append(TokenKey(key_id, secret))
    return tuple(keys)


def _require_url(name: str, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise SettingsError(f"{name} must be absolute http(s) URLs, got {value!r}")


@dataclass(frozen=True)
class BrokerageSettings:
    """The slice's limits and sync timing, plus the connector settings."""

    connectors: ConnectorSettings = field(default_factory=ConnectorSettings)
    max_connections_per_user: int = 10
    # How long a StartConnection state is accepted.
    state_lifetime: timedelta = timedelta(minutes=10)
    # SyncPortfolio is refused this soon after a connection's last sync ended.
    min_sync_interval: timedelta = timedelta(seconds=60)
    # How often the worker syncs an idle connection by itself.
    sync_interval: timedelta = timedelta(minutes=15)
    # Access tokens are refreshed when they expire within this margin.
    refresh_margin: timedelta = timedelta(minutes=5)
    # A connection whose sign-in ends within this is REAUTH_REQUIRED ahead of time.
    reauth_warning: timedelta = timedelta(hours=12)
    # A worker's claim on a connection; another may take over after it (a crashed worker).
    sync_lease: timedelta = timedelta(minutes=5)
    # History fetched by a connection's first sync; later syncs re-read `resync_overlap` back.
    first_sync_history: timedelta = timedelta(days=730)
    resync_overlap: timedelta = timedelta(days=30)
    # The background worker (off: syncs run only when SyncWorker.run_due is awaited).
    worker_enabled: bool = True
    worker_poll: timedelta = timedelta(seconds=5)
    worker_batch: int = 8
    # GetPortfolio answers are kept this long per user (0: priced on every call), within a
    # byte budget; a change to the user's book drops theirs at once (brokerage.snapshots).
    portfolio_max_age: timedelta = timedelta(seconds=1)
    portfolio_cache_bytes: int = 64 * 1024 * 1024

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BrokerageSettings:
        """Read OPTIX_BROKERAGE_{MAX_CONNECTIONS, MIN_SYNC_INTERVAL_SECONDS,
        SYNC_INTERVAL_SECONDS, REAUTH_WARNING_HOURS, SYNC_WORKER, PORTFOLIO_MAX_AGE_MS,
        PORTFOLIO_CACHE_MB} plus the connector variables."""
        base = cls()
        prefix = "OPTIX_BROKERAGE_"
        return cls(
            connectors=ConnectorSettings.from_env(env),
            max_connections_per_user=env_int(
                env, prefix + "MAX_CONNECTIONS", base.max_connections_per_user, minimum=1
            ),
            min_sync_interval=timedelta(
                seconds=env_float(
                    env,
                    prefix + "MIN_SYNC_INTERVAL_SECONDS",
                    base.min_sync_interval.total_seconds(),
                    minimum=0.0,
                )
            ),
            sync_interval=timedelta(
                seconds=env_float(
                    env,
                    prefix + "SYNC_INTERVAL_SECONDS",
                    base.sync_interval.total_seconds(),
                    minimum=1.0,
                )
            ),
            reauth_warning=timedelta(
                hours=env_float(
                    env,
                    prefix + "REAUTH_WARNING_HOURS",
                    base.reauth_warning.total_seconds() / 3600,
                    minimum=0.0,
                )
            ),
            worker_enabled=env_bool(env, prefix + "SYNC_WORKER", base.worker_enabled),
            portfolio_max_age=timedelta(
                milliseconds=env_int(env, prefix + "PORTFOLIO_MAX_AGE_MS", 1000, minimum=0)
            ),
            portfolio_cache_bytes=env_int(env, prefix + "PORTFOLIO_CACHE_MB", 64, minimum=1)
            * 1024
            * 1024,
        )
