"""Pagination (AIP-158): page sizes with a default and a cap, and opaque page tokens signed
(HMAC-SHA256) and bound to the caller and to the request's other fields, so a token cannot be
forged, read as a cursor, or reused with another request or by another user."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any

from optix_server.infra import errors

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
_MAC_BYTES = 16


def page_size(requested: int, *, default: int = DEFAULT_PAGE_SIZE, cap: int = MAX_PAGE_SIZE) -> int:
    """The page size to use: 0 is `default`, above `cap` is `cap`, negative is invalid."""
    if requested < 0:
        raise errors.InvalidArgument(
            "page_size must not be negative",
            [errors.FieldViolation("page_size", "must be 0 (the default) or more")],
        )
    return min(requested or default, cap)


def _bad_token() -> errors.InvalidArgument:
    return errors.InvalidArgument(
        "page_token is not valid for this request",
        [
            errors.FieldViolation(
                "page_token",
                "not a token from a previous call with the same other fields; list from the start",
            )
        ],
    )


class PageTokens:
    """Issues and reads the page tokens of one kind of List call."""

    def __init__(self, key: bytes, kind: str) -> None:
        self._key = hashlib.sha256(b"optix page tokens v1|" + kind.encode() + b"|" + key).digest()

    def _mac(self, owner: str, request: Mapping[str, Any], cursor: bytes) -> bytes:
        bound = json.dumps([owner, dict(request)], sort_keys=True, separators=(",", ":"))
        return hmac.new(self._key, bound.encode() + b"|" + cursor, hashlib.sha256).digest()[
            :_MAC_BYTES
        ]

    def issue(self, owner: str, request: Mapping[str, Any], cursor: Sequence[Any]) -> str:
        """A token resuming after `cursor` (JSON values), valid only for `owner` and `request`
        (the request's fields other than page_size and page_token)."""
        raw = json.dumps(list(cursor), separators=(",", ":")).encode()
        token = self._mac(owner, request, raw) + raw
        return base64.urlsafe_b64encode(token).decode().rstrip("=")

    def read(self, token: str, owner: str, request: Mapping[str, Any]) -> list[Any] | None:
        """The cursor of `token` (None for an empty token: the first page); INVALID_ARGUMENT
        when it was not issued for this owner and request."""
        if not token:
            return None
        try:
            data = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise _bad_token() from None
        mac, raw = data[:_MAC_BYTES], data[_MAC_BYTES:]
        if len(mac) != _MAC_BYTES or not hmac.compare_digest(mac, self._mac(owner, request, raw)):
            raise _bad_token()
        cursor = json.loads(raw)
        if not isinstance(cursor, list):
            raise _bad_token()
        return cursor
