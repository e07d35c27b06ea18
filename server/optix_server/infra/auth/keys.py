"""Ed25519 signing keys for JWTs: a keyring (one signs, several verify), JWKS and persistence."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from optix_server.infra.auth.clock import Clock
from optix_server.infra.auth.config import AuthSettings
from optix_server.infra.crypto import derive_key
from optix_server.infra.files import private_dir, tighten, write_private_file

_STAMP_FORMAT = "%Y%m%dT%H%M%S%fZ"
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z ]+)-----[A-Za-z0-9+/=\s]+-----END \1-----", re.MULTILINE)


class KeyConfigError(ValueError):
    """The configured signing keys cannot be used (not Ed25519, unreadable, none at all)."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class SigningKey:
    """One Ed25519 key pair (or a public key only, for a retired key) named by its kid."""

    kid: str
    public_key: Ed25519PublicKey
    private_key: Ed25519PrivateKey | None = None
    # A staged key is published (JWKS, verification) at once but signs only from this instant,
    # so every replica and client knows it before the first token signed with it appears.
    not_before: datetime | None = None

    @classmethod
    def from_private(
        cls, private_key: Ed25519PrivateKey, not_before: datetime | None = None
    ) -> SigningKey:
        """A key pair whose kid is its RFC 7638 thumbprint."""
        public = private_key.public_key()
        return cls(
            kid=thumbprint(public),
            public_key=public,
            private_key=private_key,
            not_before=not_before,
        )

    @classmethod
    def from_public(cls, public_key: Ed25519PublicKey) -> SigningKey:
        """A verify-only key whose kid is its RFC 7638 thumbprint."""
        return cls(kid=thumbprint(public_key), public_key=public_key)

    def jwk(self) -> dict[str, str]:
        """The public half as a JSON Web Key (RFC 8037)."""
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": _b64url(_raw_public(self.public_key)),
            "kid": self.kid,
            "alg": "EdDSA",
            "use": "sig",
        }


def _raw_public(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def thumbprint(public_key: Ed25519PublicKey) -> str:
    """RFC 7638 JWK thumbprint: a stable kid derived from the key itself."""
    canonical = json.dumps(
        {"crv": "Ed25519", "kty": "OKP", "x": _b64url(_raw_public(public_key))},
        separators=(",", ":"),
        sort_keys=True,
    )
    return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class KeyRing:
    """The signing keys: the active one signs, every one verifies (rotation without downtime).

    The active key is the private key with the latest `not_before` that has passed (keys
    without one count as oldest; among equals the first listed wins).
    """

    def __init__(self, keys: Sequence[SigningKey], clock: Clock) -> None:
        self._keys = {key.kid: key for key in keys}
        self._order = list(self._keys.values())
        self._clock = clock
        if self._current() is None:
            raise KeyConfigError("no signing key with a private half is active yet")

    def _current(self) -> SigningKey | None:
        now = self._clock.now()
        eligible = [
            k
            for k in self._order
            if k.private_key is not None and (k.not_before is None or k.not_before <= now)
        ]
        if not eligible:
            return None
        return max(eligible, key=lambda k: k.not_before or _EPOCH)

    @property
    def active(self) -> SigningKey:
        """The key new tokens are signed with now."""
        current = self._current()
        assert current is not None  # keys only ever become eligible as time passes
        return current

    def verification_key(self, kid: str) -> Ed25519PublicKey | None:
        """The public key named `kid`, or None for a key this ring does not know."""
        key = self._keys.get(kid)
        return None if key is None else key.public_key

    def derived_secret(self, purpose: str) -> bytes:
        """A 32-byte secret for `purpose` (page tokens, say), derived from the first private
        key: the same on every replica that shares the signing keys, and never the key itself."""
        first = next(k.private_key for k in self._order if k.private_key is not None)
        raw = first.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return derive_key(raw, purpose)

    def jwks(self) -> list[dict[str, str]]:
        """Every verification key as a JWK (staged ones too), the active one first."""
        active = self.active
        return [active.jwk(), *(k.jwk() for k in self._order if k.kid != active.kid)]


def _load_private_pem(pem: bytes) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyConfigError(f"unreadable private key: {type(exc).__name__}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyConfigError("signing keys must be Ed25519")
    return key


def _load_public_pem(pem: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise KeyConfigError(f"unreadable public key: {type(exc).__name__}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyConfigError("verification keys must be Ed25519")
    return key


def _pem_blocks(text: str) -> list[bytes]:
    return [match.group(0).encode("ascii") for match in _PEM_BLOCK.finditer(text)]


def private_key_pem(private_key: Ed25519PrivateKey) -> bytes:
    """PKCS#8 PEM (unencrypted) for a private key; store it with 0600 permissions."""
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_new_key(keys_dir: Path, clock: Clock, activate_at: datetime | None = None) -> SigningKey:
    """Generate a key in `keys_dir` that starts signing at `activate_at` (default: now).

    The file name starts with the activation instant, so names sort in activation order.
    """
    private_dir(keys_dir)
    not_before = (activate_at or clock.now()).astimezone(UTC)
    key = SigningKey.from_private(Ed25519PrivateKey.generate(), not_before)
    assert key.private_key is not None
    stamp = not_before.strftime(_STAMP_FORMAT)
    write_private_file(keys_dir / f"{stamp}-{key.kid}.pem", private_key_pem(key.private_key))
    return key


def _keys_from_dir(keys_dir: Path, generate: bool, clock: Clock) -> list[SigningKey]:
    files = sorted(keys_dir.glob("*.pem")) if keys_dir.is_dir() else []
    if files:
        # Keys written before they were created 0600, or copied in by hand, are tightened.
        private_dir(keys_dir)
        for path in files:
            tighten(path)
    if not files:
        if not generate:
            raise KeyConfigError(
                f"no signing key in {keys_dir} and OPTIX_AUTH_GENERATE_MISSING_KEY is off"
            )
        write_new_key(keys_dir, clock)
        files = sorted(keys_dir.glob("*.pem"))
    return [
        SigningKey.from_private(_load_private_pem(path.read_bytes()), _stamp_of(path))
        for path in files
    ]


def _stamp_of(path: Path) -> datetime | None:
    # "<activation stamp>-<kid>.pem"; a key dropped in under another name counts as oldest.
    try:
        return datetime.strptime(path.name.split("-", 1)[0], _STAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def load_keyring(settings: AuthSettings, clock: Clock, var_dir: Path) -> KeyRing:
    """Build the keyring from PEMs in the environment, or else from the key directory."""
    extra = [
        SigningKey.from_public(_load_public_pem(pem))
        for pem in _pem_blocks(settings.verify_keys_pem)
    ]
    if settings.signing_keys_pem.strip():
        blocks = _pem_blocks(settings.signing_keys_pem)
        if not blocks:
            raise KeyConfigError("OPTIX_AUTH_SIGNING_KEYS_PEM holds no PEM block")
        # No activation times here: the first key signs, the others only verify.
        keys = [SigningKey.from_private(_load_private_pem(pem)) for pem in blocks]
    else:
        # The newest active key signs; older ones keep verifying the tokens they signed.
        keys = _keys_from_dir(settings.key_directory(var_dir), settings.generate_missing_key, clock)
    return KeyRing([*keys, *extra], clock)
