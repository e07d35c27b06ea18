"""The user domain: accounts, sign-in with optional MFA, sessions, profile. Knows no gRPC."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from optix_server.common.webhooks import check_webhook_url
from optix_server.infra.auth.clock import Clock
from optix_server.infra.auth.tokens import TokenAuthority
from optix_server.infra.crypto import opaque_token, sha256_hex
from optix_server.infra.db import new_id
from optix_server.infra.errors import (
    Aborted,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    ViolationCollector,
)
from optix_server.infra.logging import get_logger
from optix_server.infra.passwords import PasswordHasher, PasswordPolicy
from optix_server.user import validation as v
from optix_server.user.domain import (
    MfaChallenge,
    ProfileUpdate,
    ProfileUpdated,
    SecondFactor,
    TokenPair,
    UserProfile,
    UserWebhook,
)
from optix_server.user.guard import AttemptGuard
from optix_server.user.mfa import MfaManager
from optix_server.user.models import UserRow
from optix_server.user.repository import UserRepository
from optix_server.user.sessions import SessionManager
from optix_server.user.webhook_secrets import WebhookSecrets

log = get_logger(__name__)

_NOTIFY = "notification_preferences"
UPDATABLE_PATHS = frozenset(
    {
        "display_name",
        "time_zone",
        "email",
        _NOTIFY,
        f"{_NOTIFY}.push_enabled",
        f"{_NOTIFY}.email_enabled",
        f"{_NOTIFY}.webhook_url",
    }
)
_MAX_MASK_PATHS = 16
_USER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _bad_credentials() -> Unauthenticated:
    # The same error whether the email is unknown or the password wrong (no enumeration).
    return Unauthenticated("invalid email or password", reason="INVALID_CREDENTIALS")


def _bad_challenge() -> Unauthenticated:
    return Unauthenticated("invalid or expired MFA challenge", reason="INVALID_MFA_CHALLENGE")


@dataclass(frozen=True)
class MfaSetup:
    """A pending TOTP secret and its otpauth:// URI."""

    secret: str
    otpauth_uri: str


@dataclass(frozen=True)
class Jwks:
    """The published verification keys and when the set was produced."""

    keys: list[dict[str, str]]
    generate_time: datetime


class UserService:
    """Use cases of the user service; every input is validated here, errors are domain errors."""

    def __init__(
        self,
        *,
        repository: UserRepository,
        hasher: PasswordHasher,
        policy: PasswordPolicy,
        sessions: SessionManager,
        mfa: MfaManager,
        guard: AttemptGuard,
        authority: TokenAuthority,
        zones: v.TimeZones,
        clock: Clock,
        challenge_ttl: timedelta,
        attempts_per_challenge: int,
        webhook_secrets: WebhookSecrets,
        webhook_readers: frozenset[str],
    ) -> None:
        self._repo = repository
        self._hasher = hasher
        self._policy = policy
        self._sessions = sessions
        self._mfa = mfa
        self._guard = guard
        self._authority = authority
        self._zones = zones
        self._clock = clock
        self._challenge_ttl = challenge_ttl
        self._attempts_per_challenge = attempts_per_challenge
        self._webhook_secrets = webhook_secrets
        self._webhook_readers = webhook_readers

    # --- sign-up and sign-in ---------------------------------------------------------------

    async def register(
        self, email: str, password: str, display_name: str, time_zone: str, address: str
    ) -> tuple[UserProfile, TokenPair]:
        """Create an account and sign it in."""
        errors = ViolationCollector()
        normalised = self._check_email(email, "email", errors)
        self._check_new_password(password, "password", normalised[0] if normalised else "", errors)
        v.check_display_name(display_name, "display_name", errors)
        time_zone = time_zone or "UTC"
        v.check_time_zone(time_zone, "time_zone", self._zones, errors)
        errors.raise_if_any()
        assert normalised is not None
        await self._guard.claim_register(address)
        password_hash = await self._hasher.hash(password)
        now = self._clock.now()
        row = UserRow(
            id=new_id(),
            email=normalised[0],
            email_key=normalised[1],
            password_hash=password_hash,
            display_name=display_name.strip(),
            time_zone=time_zone,
            push_enabled=True,
            email_enabled=False,
            webhook_url="",
            mfa_enabled=False,
            create_time=now,
            update_time=now,
        )
        refresh, family = self._sessions.prepare()
        family_id = await self._repo.create_user(row, family)
        tokens = self._sessions.tokens(row.id, family_id, refresh, family)
        try:
            await self._guard.signed_in(row.email_key, address)
        except Exception as exc:
            # The account and its session exist: a known-address note (lenient lockouts later)
            # is not worth answering the Register with an error it did not have.
            log.warning("could not note a new account's address", error=type(exc).__name__)
        return UserProfile.from_row(row), tokens

    async def login(self, email: str, password: str, address: str) -> TokenPair | MfaChallenge:
        """Check email and password; tokens, or an MFA challenge when MFA is on."""
        errors = ViolationCollector()
        if not email:
            errors.add("email", "is required")
        elif len(email) > v.MAX_EMAIL:
            errors.add("email", f"must be at most {v.MAX_EMAIL} characters")
        v.check_password_present(password, "password", errors)
        errors.raise_if_any()
        normalised = v.normalise_email(email)
        account = normalised[1] if normalised else email.strip().casefold()
        # Limits before bcrypt: a locked-out guesser costs no hashing work.
        attempt = await self._guard.check_login(account, address)
        user = await self._repo.find_by_email_key(account) if normalised else None
        # Unknown accounts are checked against a dummy hash: same error, about the same time.
        valid = await self._hasher.verify(password, user.password_hash if user else None)
        if user is None or not valid:
            raise _bad_credentials()  # the attempt stays counted as a failure
        await self._guard.login_succeeded(attempt, account, address)
        if self._hasher.needs_rehash(user.password_hash):
            await self._upgrade_hash(user.id, password)
        if user.mfa_enabled:
            return await self._new_challenge(user.id)
        await self._guard.signed_in(account, address)
        return await self._sessions.start(user.id)

    async def _upgrade_hash(self, user_id: str, password: str) -> None:
        # The cost was raised since this hash was made: re-hash now that we have the password.
        # Best effort: a busy pool must not turn a correct sign-in into an error.
        with contextlib.suppress(ResourceExhausted):
            new_hash = await self._hasher.hash(password)
            await self._repo.update_user(user_id, {"password_hash": new_hash})

    async def _new_challenge(self, user_id: str) -> MfaChallenge:
        challenge_id = opaque_token("mfa_", 24)
        now = self._clock.now()
        expire = now + self._challenge_ttl
        await self._repo.create_challenge(sha256_hex(challenge_id), user_id, now, expire)
        return MfaChallenge(challenge_id, expire)

    async def complete_mfa_login(
        self, challenge_id: str, factor: SecondFactor, address: str
    ) -> TokenPair:
        """Redeem an MFA challenge with a TOTP or recovery code."""
        errors = ViolationCollector()
        v.check_opaque(challenge_id, "challenge_id", errors)
        self._check_factor_input(factor, errors)
        errors.raise_if_any()
        now = self._clock.now()
        challenge = await self._repo.get_challenge(sha256_hex(challenge_id))
        if challenge is None or challenge.used or challenge.expire_time <= now:
            raise _bad_challenge()
        user = await self._repo.get_user(challenge.user_id)
        if user is None or not user.mfa_enabled:
            raise _bad_challenge()
        attempt = await self._guard.check_mfa(user.id, user.email_key, address)
        if not await self._second_factor_ok(user, factor):
            await self._repo.fail_challenge(challenge.id, self._attempts_per_challenge, now)
            raise Unauthenticated("invalid MFA code", reason="INVALID_MFA_CODE")
        await self._guard.mfa_succeeded(attempt)
        if not await self._repo.consume_challenge(challenge.id, now):
            raise _bad_challenge()
        await self._guard.signed_in(user.email_key, address)
        return await self._sessions.start(user.id)

    # --- sessions ---------------------------------------------------------------------------

    async def refresh(self, refresh_token: str) -> TokenPair:
        """Rotate a refresh token into a new pair."""
        errors = ViolationCollector()
        v.check_opaque(refresh_token, "refresh_token", errors)
        errors.raise_if_any()
        return await self._sessions.refresh(refresh_token)

    async def logout(self, user_id: str, refresh_token: str) -> None:
        """End the caller's session that `refresh_token` belongs to."""
        errors = ViolationCollector()
        v.check_opaque(refresh_token, "refresh_token", errors)
        errors.raise_if_any()
        await self._sessions.logout(refresh_token, user_id)

    def jwks(self) -> Jwks:
        """The public keys that verify access tokens."""
        return Jwks(self._authority.keyring.jwks(), self._clock.now())

    # --- profile ----------------------------------------------------------------------------

    async def _user(self, user_id: str) -> UserRow:
        row = await self._repo.get_user(user_id)
        if row is None:
            raise NotFound(
                "the signed-in user no longer exists", resource_type="optix.user.v1.User"
            )
        return row

    async def get_me(self, user_id: str) -> UserProfile:
        """The signed-in user's profile."""
        return UserProfile.from_row(await self._user(user_id))

    async def update_me(self, user_id: str, update: ProfileUpdate, address: str) -> ProfileUpdated:
        """Change the profile fields named in the mask; a new default-webhook signing secret is
        made (and returned, once) for a URL that has none yet, or on request."""
        errors = ViolationCollector()
        values = self._profile_values(update, errors)
        errors.raise_if_any()
        user = await self._user(user_id)
        if "email" in values:
            await self._confirm_password(user, update.current_password, address)
        now = self._clock.now()
        secret = self._webhook_secret_change(user, values, update.rotate_webhook_secret, now)
        # A webhook change is written only over the webhook state it was decided on: of two
        # concurrent rotations, one wins and the other is ABORTED, so no response hands out a
        # secret that is not the stored one.
        expect = (
            {"webhook_url": user.webhook_url, "webhook_signing_secret": user.webhook_signing_secret}
            if "webhook_signing_secret" in values
            else None
        )
        values["update_time"] = now
        row = await self._repo.update_user(user_id, values, expect=expect)
        if row is None:
            if expect is not None and await self._repo.get_user(user_id) is not None:
                raise Aborted(
                    "the webhook settings changed meanwhile; read them and try again",
                    reason="CONCURRENT_UPDATE",
                )
            raise NotFound(
                "the signed-in user no longer exists", resource_type="optix.user.v1.User"
            )
        return ProfileUpdated(UserProfile.from_row(row), secret)

    def _webhook_secret_change(
        self, user: UserRow, values: dict[str, Any], rotate: bool, now: datetime
    ) -> str:
        """Add the secret columns to `values` when the webhook needs a new secret (or none) and
        return the new secret in clear ("" when none was made)."""
        if "webhook_url" not in values and not rotate:
            return ""
        url = values.get("webhook_url", user.webhook_url)
        if not url:
            if rotate:
                raise FailedPrecondition(
                    "there is no default webhook URL to rotate a signing secret for",
                    reason="NO_WEBHOOK_URL",
                )
            values["webhook_signing_secret"] = None
            values["webhook_secret_create_time"] = None
            return ""
        # A URL keeps its secret; a different URL gets its own, so a receiver the user moved
        # away from cannot sign requests the new receiver would trust.
        if not rotate and user.webhook_signing_secret is not None and url == user.webhook_url:
            return ""
        secret = self._webhook_secrets.new_secret()
        values["webhook_signing_secret"] = self._webhook_secrets.seal(secret, user.id)
        values["webhook_secret_create_time"] = now
        return secret

    async def user_webhook(self, caller_service: str | None, name: str) -> UserWebhook:
        """A user's default webhook with its secret in clear, for an allowed internal service
        only (`caller_service`: the caller's service identity, None for a user)."""
        # Before anything else: a non-service caller learns nothing, not even whether the
        # name is well formed or the user exists.
        if caller_service is None or caller_service not in self._webhook_readers:
            raise PermissionDenied(
                "GetUserWebhook is internal: it needs an allowed service identity",
                reason="SERVICE_IDENTITY_REQUIRED",
            )
        parts = name.split("/")
        if len(parts) != 2 or parts[0] != "users" or not _USER_ID.fullmatch(parts[1]):
            raise InvalidArgument(
                "name is not a valid user name",
                [FieldViolation("name", "expected users/{user} with the user's id")],
            )
        row = await self._repo.get_user(parts[1])
        if row is None:
            raise NotFound(
                f"{name} not found", resource_type="optix.user.v1.User", resource_name=name
            )
        if not row.webhook_url:
            return UserWebhook("", "", None)
        secret = self._webhook_secrets.open(row.webhook_signing_secret, row.id)
        if secret is None and row.webhook_signing_secret is not None:
            log.warning("a default webhook secret does not open", user_id=row.id)
        # A URL from before secrets existed (or whose secret does not open) has none: it gets
        # one when the user sets it again or rotates, and is not delivered to until then.
        return UserWebhook(
            row.webhook_url, secret or "", row.webhook_secret_create_time if secret else None
        )

    def _profile_values(self, update: ProfileUpdate, errors: ViolationCollector) -> dict[str, Any]:
        paths = update.paths
        if not paths:
            if not update.rotate_webhook_secret:
                errors.add("update_mask", "must name at least one field")
            return {}
        if len(paths) > _MAX_MASK_PATHS:
            errors.add("update_mask", f"must name at most {_MAX_MASK_PATHS} fields")
            return {}
        values: dict[str, Any] = {}
        for path in paths:
            if path not in UPDATABLE_PATHS:
                errors.add("update_mask", f"{path[:64]!r} is not an updatable field")
        if "display_name" in paths:
            v.check_display_name(update.display_name, "user.display_name", errors)
            values["display_name"] = update.display_name.strip()
        if "time_zone" in paths:
            v.check_time_zone(update.time_zone, "user.time_zone", self._zones, errors)
            values["time_zone"] = update.time_zone
        whole = _NOTIFY in paths
        if whole or f"{_NOTIFY}.push_enabled" in paths:
            values["push_enabled"] = update.push_enabled
        if whole or f"{_NOTIFY}.email_enabled" in paths:
            values["email_enabled"] = update.email_enabled
        if whole or f"{_NOTIFY}.webhook_url" in paths:
            check_webhook_url(update.webhook_url, f"user.{_NOTIFY}.webhook_url", errors)
            values["webhook_url"] = update.webhook_url
        if "email" in paths:
            normalised = self._check_email(update.email, "user.email", errors)
            if normalised is not None:
                values["email"], values["email_key"] = normalised
            if not update.current_password:
                errors.add("current_password", "is required to change the email")
            else:
                v.check_password_present(update.current_password, "current_password", errors)
        return values

    async def change_password(
        self, user_id: str, current_password: str, new_password: str, address: str
    ) -> TokenPair:
        """Replace the password, sign out every session and start a fresh one."""
        errors = ViolationCollector()
        v.check_password_present(current_password, "current_password", errors)
        user = await self._user(user_id)
        self._check_new_password(new_password, "new_password", user.email, errors)
        errors.raise_if_any()
        await self._confirm_password(user, current_password, address)
        new_hash = await self._hasher.hash(new_password)
        await self._repo.update_user(
            user_id, {"password_hash": new_hash, "update_time": self._clock.now()}
        )
        await self._sessions.end_all(user_id, "password_change")
        # A challenge won with the old password must not be redeemable after the change.
        await self._repo.end_challenges(user_id, self._clock.now())
        return await self._sessions.start(user_id)

    # --- MFA enrolment ---------------------------------------------------------------------

    async def setup_mfa(self, user_id: str) -> MfaSetup:
        """Create a pending TOTP secret (MFA stays off until confirmed)."""
        user = await self._user(user_id)
        if user.mfa_enabled:
            raise FailedPrecondition(
                "MFA is already enabled; disable it first", reason="MFA_ALREADY_ENABLED"
            )
        secret = self._mfa.new_secret()
        await self._repo.update_user(
            user_id, {"mfa_pending_secret": self._mfa.seal(secret, user_id)}
        )
        return MfaSetup(secret, self._mfa.provisioning_uri(secret, user.email))

    async def confirm_mfa(self, user_id: str, totp_code: str, address: str) -> list[str]:
        """Enable MFA after one valid code; returns recovery codes (shown only now)."""
        errors = ViolationCollector()
        v.check_totp_code(totp_code, "totp_code", errors)
        errors.raise_if_any()
        user = await self._user(user_id)
        if user.mfa_enabled:
            raise FailedPrecondition("MFA is already enabled", reason="MFA_ALREADY_ENABLED")
        sealed = user.mfa_pending_secret
        pending = self._mfa.unseal(sealed, user_id)
        if sealed is None or pending is None:
            raise FailedPrecondition("call SetupMfa first", reason="MFA_NOT_SET_UP")
        attempt = await self._guard.check_mfa(user_id, user.email_key, address)
        step = self._mfa.matching_step(pending, totp_code)
        if step is None:
            raise InvalidArgument(
                "the code does not match", [FieldViolation("totp_code", "is not a current code")]
            )
        await self._guard.mfa_succeeded(attempt)
        codes = self._mfa.new_recovery_codes()
        hashes = [self._mfa.hash_recovery_code(code) for code in codes]
        if not await self._repo.enable_mfa(user_id, sealed, step, hashes, self._clock.now()):
            raise FailedPrecondition(
                "this code was already used or MFA changed meanwhile; try the next code",
                reason="MFA_CODE_USED",
            )
        return codes

    async def disable_mfa(self, user_id: str, factor: SecondFactor, address: str) -> None:
        """Turn MFA off, proven by a current TOTP or a recovery code."""
        errors = ViolationCollector()
        self._check_factor_input(factor, errors)
        errors.raise_if_any()
        user = await self._user(user_id)
        if not user.mfa_enabled:
            raise FailedPrecondition("MFA is not enabled", reason="MFA_NOT_ENABLED")
        attempt = await self._guard.check_mfa(user_id, user.email_key, address)
        if not await self._second_factor_ok(user, factor):
            raise PermissionDenied("invalid MFA code", reason="INVALID_MFA_CODE")
        await self._guard.mfa_succeeded(attempt)
        await self._repo.disable_mfa(user_id, self._clock.now())

    # --- helpers ----------------------------------------------------------------------------

    def _check_email(
        self, email: str, path: str, errors: ViolationCollector
    ) -> tuple[str, str] | None:
        if not email:
            errors.add(path, "is required")
            return None
        if len(email) > v.MAX_EMAIL:
            errors.add(path, f"must be at most {v.MAX_EMAIL} characters")
            return None
        normalised = v.normalise_email(email)
        if normalised is None:
            errors.add(path, "must be a valid email address")
        return normalised

    def _check_new_password(
        self, password: str, path: str, email: str, errors: ViolationCollector
    ) -> None:
        if not password:
            errors.add(path, "is required")
            return
        for problem in self._policy.problems(password, email=email):
            errors.add(path, problem)

    @staticmethod
    def _check_factor_input(factor: SecondFactor, errors: ViolationCollector) -> None:
        if factor.totp_code:
            v.check_totp_code(factor.totp_code, "totp_code", errors)
        elif factor.recovery_code:
            v.check_recovery_code(factor.recovery_code, "recovery_code", errors)
        else:
            errors.add("factor", "a totp_code or a recovery_code is required")

    async def _second_factor_ok(self, user: UserRow, factor: SecondFactor) -> bool:
        if factor.totp_code:
            return await self._mfa.verify_totp(user.id, user.mfa_secret, factor.totp_code)
        return await self._mfa.use_recovery_code(user.id, factor.recovery_code)

    async def _confirm_password(self, user: UserRow, password: str, address: str) -> None:
        # Re-authentication is a password guess like any other: same limits as Login.
        attempt = await self._guard.check_login(user.email_key, address)
        if not await self._hasher.verify(password, user.password_hash):
            raise PermissionDenied("the current password is not correct", reason="WRONG_PASSWORD")
        await self._guard.login_succeeded(attempt, user.email_key, address)
