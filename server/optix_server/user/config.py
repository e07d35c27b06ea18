"""UserSettings: password hashing, token lifetimes and brute-force limits of the user service."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from optix_server.infra.env import env_int, env_secret, env_str


def _seconds(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> timedelta:
    return timedelta(seconds=env_int(env, name, default, minimum=minimum))


@dataclass(frozen=True)
class UserSettings:
    """Tuning of the user service, read once from OPTIX_USER_* variables."""

    bcrypt_cost: int = 12
    # bcrypt threads: one core is always left to the event loop.
    bcrypt_workers: int = max(1, (os.cpu_count() or 2) - 1)
    # Password checks admitted at once (running + queued); more are refused fast.
    bcrypt_max_pending: int = 8
    # Server-side secret mixed into password and recovery-code hashes and the TOTP-secret key.
    # None: a random one is created once under the var dir (fine on a laptop; set it in prod).
    pepper: bytes | None = None
    access_token_ttl: timedelta = timedelta(minutes=15)
    refresh_token_ttl: timedelta = timedelta(days=30)
    mfa_challenge_ttl: timedelta = timedelta(minutes=5)
    mfa_issuer: str = "OPTIX"
    recovery_code_count: int = 10
    # Failed attempts allowed per window before RESOURCE_EXHAUSTED; windows always end, so a
    # lockout lasts at most one window.
    failure_window: timedelta = timedelta(minutes=15)
    login_failures_per_account_and_address: int = 5
    login_failures_per_account: int = 20
    login_failures_per_address: int = 50
    mfa_failures_per_account: int = 5
    mfa_failures_per_address: int = 20
    mfa_attempts_per_challenge: int = 5
    registrations_per_address: int = 20
    # An address where an account completed a sign-in is spared that account's account-wide
    # lock for this long, so a distributed guesser cannot lock the owner out.
    known_client_ttl: timedelta = timedelta(days=30)
    # Services (by service-token identity) allowed to read users' default webhooks and their
    # secrets through GetUserWebhook.
    webhook_readers: frozenset[str] = frozenset({"alert"})

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> UserSettings:
        """Read OPTIX_USER_* variables (defaults for anything unset)."""
        default = cls()
        return cls(
            bcrypt_cost=env_int(env, "OPTIX_USER_BCRYPT_COST", 12, minimum=4),
            bcrypt_workers=env_int(
                env, "OPTIX_USER_BCRYPT_WORKERS", default.bcrypt_workers, minimum=1
            ),
            bcrypt_max_pending=env_int(env, "OPTIX_USER_BCRYPT_MAX_PENDING", 8, minimum=1),
            pepper=env_secret(env, "OPTIX_USER_PEPPER"),
            access_token_ttl=_seconds(env, "OPTIX_USER_ACCESS_TOKEN_TTL_SECONDS", 900, 30),
            refresh_token_ttl=_seconds(env, "OPTIX_USER_REFRESH_TOKEN_TTL_SECONDS", 30 * 86400, 60),
            mfa_challenge_ttl=_seconds(env, "OPTIX_USER_MFA_CHALLENGE_TTL_SECONDS", 300, 30),
            mfa_issuer=env_str(env, "OPTIX_USER_MFA_ISSUER", "OPTIX"),
            failure_window=_seconds(env, "OPTIX_USER_FAILURE_WINDOW_SECONDS", 900, 1),
            login_failures_per_account_and_address=env_int(
                env, "OPTIX_USER_LOGIN_FAILURES_PER_ACCOUNT_AND_ADDRESS", 5, minimum=1
            ),
            login_failures_per_account=env_int(
                env, "OPTIX_USER_LOGIN_FAILURES_PER_ACCOUNT", 20, minimum=1
            ),
            login_failures_per_address=env_int(
                env, "OPTIX_USER_LOGIN_FAILURES_PER_ADDRESS", 50, minimum=1
            ),
            mfa_failures_per_account=env_int(
                env, "OPTIX_USER_MFA_FAILURES_PER_ACCOUNT", 5, minimum=1
            ),
            mfa_failures_per_address=env_int(
                env, "OPTIX_USER_MFA_FAILURES_PER_ADDRESS", 20, minimum=1
            ),
            registrations_per_address=env_int(
                env, "OPTIX_USER_REGISTRATIONS_PER_ADDRESS", 20, minimum=1
            ),
            known_client_ttl=_seconds(env, "OPTIX_USER_KNOWN_CLIENT_TTL_SECONDS", 30 * 86400, 60),
            webhook_readers=frozenset(
                name.strip()
                for name in env_str(env, "OPTIX_USER_WEBHOOK_READERS", "alert").split(",")
                if name.strip()
            ),
        )
