"""Brute-force limits of the user service: failed sign-ins and MFA codes, registrations."""

from __future__ import annotations

from optix_server.infra.ratelimit import FailureLimiter, Limit
from optix_server.user.config import UserSettings


class AttemptGuard:
    """Applies the user service's failure limits per account, per address and per both."""

    def __init__(self, limiter: FailureLimiter, settings: UserSettings) -> None:
        self._limiter = limiter
        window = settings.failure_window
        # The (account, address) pair locks fastest, and only the attacker's own address; the
        # account-wide limit is higher and only a distributed attack reaches it. All end with
        # their window, so a victim is delayed at most one window at a time.
        self._login_pair = Limit(
            "login-pair", settings.login_failures_per_account_and_address, window
        )
        self._login_account = Limit("login-account", settings.login_failures_per_account, window)
        self._login_address = Limit("login-address", settings.login_failures_per_address, window)
        self._mfa_account = Limit("mfa-account", settings.mfa_failures_per_account, window)
        self._mfa_address = Limit("mfa-address", settings.mfa_failures_per_address, window)
        self._register_address = Limit(
            "register-address", settings.registrations_per_address, window
        )

    async def check_login(self, account: str, address: str) -> None:
        """Refuse (ResourceExhausted) when this account or address failed too often."""
        await self._limiter.check(self._login_pair, f"{account}|{address}")
        await self._limiter.check(self._login_account, account)
        await self._limiter.check(self._login_address, address)

    async def login_failed(self, account: str, address: str) -> None:
        """Count a failed sign-in."""
        await self._limiter.record_failure(self._login_pair, f"{account}|{address}")
        await self._limiter.record_failure(self._login_account, account)
        await self._limiter.record_failure(self._login_address, address)

    async def login_succeeded(self, account: str, address: str) -> None:
        """The right password from this address: forget its failures on this account."""
        await self._limiter.clear(self._login_pair, f"{account}|{address}")

    async def check_mfa(self, user_id: str, address: str) -> None:
        """Refuse when this account or address sent too many wrong second factors."""
        await self._limiter.check(self._mfa_account, user_id)
        await self._limiter.check(self._mfa_address, address)

    async def mfa_failed(self, user_id: str, address: str) -> None:
        """Count a wrong TOTP or recovery code."""
        await self._limiter.record_failure(self._mfa_account, user_id)
        await self._limiter.record_failure(self._mfa_address, address)

    async def check_register(self, address: str) -> None:
        """Refuse when this address created too many accounts lately."""
        await self._limiter.check(self._register_address, address)

    async def registered(self, address: str) -> None:
        """Count a registration attempt from `address`."""
        await self._limiter.record_failure(self._register_address, address)
