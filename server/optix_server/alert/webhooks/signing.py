"""The webhook signature: `Optix-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` over
"<t>.<raw body>", keyed with the UTF-8 bytes of the signing secret."""

from __future__ import annotations

import hashlib
import hmac
import time

EVENT_ID_HEADER = "Optix-Event-Id"
SIGNATURE_HEADER = "Optix-Signature"
# How far a receiver should let a signature's time be from its own clock, by default.
DEFAULT_TOLERANCE_SECONDS = 300.0


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `"<timestamp>.<body>"` keyed with `secret`."""
    message = f"{timestamp}.".encode("ascii") + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int) -> str:
    """The `Optix-Signature` value signing `body` at `timestamp` (unix seconds)."""
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify_signature(
    secret: str,
    header: str,
    body: bytes,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    *,
    now: float | None = None,
) -> bool:
    """True when `header` (an `Optix-Signature` value) signs the raw `body` with `secret` at a
    time at most `tolerance` seconds from `now` (default: the wall clock)."""
    timestamp: int | None = None
    candidates: list[bytes] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            return False
        if key == "t":
            # A second `t` would make it ambiguous which time was signed.
            if timestamp is not None or not value.isascii() or not value.isdigit():
                return False
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value.encode("utf-8"))
        # Other schemes (a future v2) are ignored, so receivers keep working when one is added.
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body).encode("ascii")
    # Constant-time comparisons: a timing difference must not reveal the signature bytewise.
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)
