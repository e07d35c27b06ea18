"""Small secret-handling helpers: token hashing, keyed hashes, TOTP-secret encryption, pepper."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from optix_server.infra.files import private_dir, tighten, write_private_file


def sha256_hex(value: str) -> str:
    """SHA-256 of a high-entropy opaque token (refresh token, challenge id) for storage."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def opaque_token(prefix: str, nbytes: int = 32) -> str:
    """A random URL-safe token with a readable prefix (e.g. `rt_...`)."""
    return prefix + secrets.token_urlsafe(nbytes)


def derive_key(pepper: bytes, purpose: str) -> bytes:
    """A 32-byte subkey of the pepper for one purpose (HKDF-SHA256), so keys never overlap."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(
        pepper
    )


def keyed_hash(key: bytes, value: str) -> str:
    """HMAC-SHA256 hex: a hash that a database dump alone cannot brute-force."""
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


class SecretBox:
    """AES-256-GCM encryption of small secrets, bound to the row they belong to."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, context: str) -> str:
        """Encrypt `plaintext`; `context` (e.g. the user id) must match when opening."""
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), context.encode("utf-8"))
        return "v1:" + base64.b64encode(nonce + sealed).decode("ascii")

    def open(self, sealed: str, context: str) -> str | None:
        """Decrypt; None when the value was tampered with or sealed for another context."""
        if not sealed.startswith("v1:"):
            return None
        try:
            raw = base64.b64decode(sealed[3:], validate=True)
            plain = self._aead.decrypt(raw[:12], raw[12:], context.encode("utf-8"))
        except (InvalidTag, ValueError):
            return None
        return plain.decode("utf-8")


def load_or_create_pepper(path: Path) -> bytes:
    """The pepper stored at `path`, created (0600, never overwritten) on first use."""
    private_dir(path.parent)
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        write_private_file(tmp, base64.b64encode(secrets.token_bytes(32)))
        # link() is atomic and refuses to replace: a concurrent first start keeps one pepper.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
        tmp.unlink()
    else:
        # A pepper file from before it was created 0600 is tightened.
        tighten(path)
    return base64.b64decode(path.read_bytes().strip())
