"""PKCE (RFC 7636) with S256: a random verifier kept server-side, its hash in the sign-in URL."""

from __future__ import annotations

import base64
import hashlib
import secrets

# RFC 7636 allows 43-128 characters; 64 random bytes give 86.
_VERIFIER_BYTES = 64


def new_code_verifier() -> str:
    """A fresh high-entropy code verifier (URL-safe, no padding)."""
    return secrets.token_urlsafe(_VERIFIER_BYTES)


def code_challenge(verifier: str) -> str:
    """The S256 challenge of a verifier: BASE64URL(SHA256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
