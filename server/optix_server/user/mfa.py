"""TOTP (RFC 6238) with single-use codes, and one-time recovery codes, for the user service."""

from __future__ import annotations

import hmac
import secrets

import pyotp

from optix_server.infra.auth.clock import Clock
from optix_server.infra.crypto import SecretBox, keyed_hash
from optix_server.user.repository import UserRepository

STEP_SECONDS = 30
# Accept the previous and the next step as well: phones' clocks drift (RFC 6238 section 5.2).
_DRIFT_STEPS = (-1, 0, 1)
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def _normalise_recovery(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())


class MfaManager:
    """Creates and checks TOTP secrets and recovery codes; the database remembers used steps."""

    def __init__(
        self,
        repository: UserRepository,
        box: SecretBox,
        code_key: bytes,
        clock: Clock,
        issuer: str,
        recovery_code_count: int,
    ) -> None:
        self._repo = repository
        self._box = box
        self._code_key = code_key
        self._clock = clock
        self._issuer = issuer
        self._recovery_code_count = recovery_code_count

    def new_secret(self) -> str:
        """A fresh 160-bit base32 TOTP secret."""
        return pyotp.random_base32(32)

    def provisioning_uri(self, secret: str, account: str) -> str:
        """The otpauth:// URI an authenticator app scans."""
        return str(pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=self._issuer))

    def seal(self, secret: str, user_id: str) -> str:
        """The secret encrypted for storage in `user_id`'s row."""
        return self._box.seal(secret, user_id)

    def unseal(self, sealed: str | None, user_id: str) -> str | None:
        """The stored secret in clear, or None when absent or tampered with."""
        return None if sealed is None else self._box.open(sealed, user_id)

    def matching_step(self, secret: str, code: str) -> int | None:
        """The time step (within drift) whose code equals `code`, else None."""
        current = int(self._clock.now().timestamp()) // STEP_SECONDS
        totp = pyotp.TOTP(secret)
        found: int | None = None
        for offset in _DRIFT_STEPS:
            step = current + offset
            # Compare every candidate in constant time; do not stop early on a match.
            if hmac.compare_digest(str(totp.generate_otp(step)), code):
                found = step if found is None else found
        return found

    async def verify_totp(self, user_id: str, sealed_secret: str | None, code: str) -> bool:
        """Whether `code` is valid now and not used before; a valid code is then spent."""
        secret = self.unseal(sealed_secret, user_id)
        if secret is None:
            return False
        step = self.matching_step(secret, code)
        if step is None:
            return False
        # Conditional UPDATE: only a step later than the last accepted one is taken, so a code
        # (or an older one) replayed, even concurrently or on another replica, fails.
        return await self._repo.consume_totp_step(user_id, step)

    def new_recovery_codes(self) -> list[str]:
        """Fresh recovery codes shown once to the user (`xxxxx-xxxxx`, ~49 bits each)."""
        codes = []
        for _ in range(self._recovery_code_count):
            raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
            codes.append(f"{raw[:5]}-{raw[5:]}")
        return codes

    def hash_recovery_code(self, code: str) -> str:
        """The keyed hash stored for a recovery code (spaces, dashes and case ignored)."""
        return keyed_hash(self._code_key, _normalise_recovery(code))

    async def use_recovery_code(self, user_id: str, code: str) -> bool:
        """Spend a recovery code; False when unknown or already used."""
        return await self._repo.consume_recovery_code(
            user_id, self.hash_recovery_code(code), self._clock.now()
        )
