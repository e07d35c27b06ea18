"""Brute-force limits of the user service: failed sign-ins and MFA codes, registrations."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Protocol

from optix_server.infra.ratelimit import Claim, ClaimRequest, FailureLimiter, Limit
from optix_server.user.config import UserSettings


class _Store(Protocol):
    """The part of infra.cache.Cache that KnownClients needs."""

    async def get(self, key: str) -> bytes | None:
        """The value of `key`, None when absent or expired."""
        ...

    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        """Store `value` under `key` for `ttl_seconds`."""
        ...


class KnownClients:
    """(account, address) pairs that completed a sign-in lately (OWASP "device cookie" idea).

    An attacker guessing from other addresses can exhaust an account-wide limit; the owner
    signing in from where they signed in before must not be locked out by that.
    """

    def __init__(self, store: _Store, ttl: timedelta) -> None:
        self._store = store
        self._ttl = ttl.total_seconds()

    @staticmethod
    def _key(account: str, address: str) -> str:
        # Hashed: emails and addresses do not belong in cache key names.
        digest = hashlib.sha256(f"{account}|{address}".encode()).hexdigest()[:32]
        return f"known-client:{digest}"

    async def add(self, account: str, address: str) -> None:
        """Remember that `account` signed in from `address`."""
        await self._store.set(self._key(account, address), b"1", ttl_seconds=self._ttl)

    async def contains(self, account: str, address: str) -> bool:
        """Whether `account` signed in from `address` within the TTL."""
        return await self._store.get(self._key(account, address)) is not None


class AttemptGuard:
    """Applies the user service's failure limits per account, per address and per both.

    `account` is the casefolded email (known or not, so unknown emails lock the same way);
    MFA limits count per user id.
    """

    def __init__(
        self, limiter: FailureLimiter, known: KnownClients, settings: UserSettings
    ) -> None:
        self._limiter = limiter
        self._known = known
        window = settings.failure_window
        # The (account, address) pair locks fastest, and only the attacker's own address; the
        # account-wide limit is higher, only a distributed attack reaches it, and it spares the
        # addresses the owner signed in from before. All end with their window.
        self._login_pair = Limit(
            "login-pair", settings.login_failures_per_account_and_address, window
        )
        self._login_account = Limit("login-account", settings.login_failures_per_account, window)
        self._login_address = Limit("login-address", settings.login_failures_per_address, window)
        # The same number per (account, address) as account-wide: a known address, spared the
        # account-wide count, still gets no more guesses of its own.
        self._mfa_pair = Limit("mfa-pair", settings.mfa_failures_per_account, window)
        self._mfa_account = Limit("mfa-account", settings.mfa_failures_per_account, window)
        self._mfa_address = Limit("mfa-address", settings.mfa_failures_per_address, window)
        self._register_address = Limit(
            "register-address", settings.registrations_per_address, window
        )

    async def check_login(self, account: str, address: str) -> Claim:
        """Count this sign-in attempt as a failure up front; refuse (ResourceExhausted) when the
        account or address failed too often. A failed attempt simply keeps its claim."""
        known = await self._known.contains(account, address)
        return await self._limiter.claim(
            [
                ClaimRequest(self._login_pair, f"{account}|{address}"),
                ClaimRequest(self._login_address, address),
                # Counted always; enforced only for addresses the owner has not used.
                ClaimRequest(self._login_account, account, enforce=not known),
            ]
        )

    async def login_succeeded(self, claim: Claim, account: str, address: str) -> None:
        """The right password from this address: the attempt was no failure, and this pair's
        earlier failures are forgotten."""
        await self._limiter.release(claim)
        await self._limiter.clear(self._login_pair, f"{account}|{address}")

    async def signed_in(self, account: str, address: str) -> None:
        """Every factor passed: `address` is now a known place of `account`."""
        await self._known.add(account, address)

    async def check_mfa(self, user_id: str, account: str, address: str) -> Claim:
        """Count this second-factor attempt up front; refuse when this account or address sent
        too many wrong codes. A wrong code simply keeps its claim."""
        known = await self._known.contains(account, address)
        return await self._limiter.claim(
            [
                ClaimRequest(self._mfa_pair, f"{user_id}|{address}"),
                ClaimRequest(self._mfa_address, address),
                ClaimRequest(self._mfa_account, user_id, enforce=not known),
            ]
        )

    async def mfa_succeeded(self, claim: Claim) -> None:
        """A right code: the attempt was no failure."""
        await self._limiter.release(claim)

    async def claim_register(self, address: str) -> None:
        """Count a registration attempt from `address`; refuse when it made too many lately."""
        await self._limiter.claim([ClaimRequest(self._register_address, address)])
