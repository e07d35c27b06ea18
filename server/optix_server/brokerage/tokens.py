"""Provider tokens encrypted at rest: AES-256-GCM (infra.crypto.SecretBox) under one of several
configured keys, the key id stored in front of each sealed value so keys can be rolled.

Sealed form: `{key id}:{SecretBox output}`, for example `k2:v1:3q2+7w...`. The first configured
key seals; every configured key opens, so rows sealed before a rotation still decrypt, and
`reseal_all` moves them to the current key. Plaintext tokens are never logged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from optix_server.infra.crypto import SecretBox, derive_key, load_or_create_pepper
from optix_server.infra.logging import get_logger

log = get_logger(__name__)

KEY_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
MIN_KEY_BYTES = 32
# HKDF purpose: a configured key is never used directly, so the same bytes configured for
# another purpose by mistake still give unrelated AES keys.
_PURPOSE = "optix brokerage provider token v1"

TokenKind = Literal["access", "refresh"]


@dataclass(frozen=True, slots=True)
class TokenKey:
    """One configured encryption key: its id (stored with each sealed value) and its bytes."""

    key_id: str
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not KEY_ID_PATTERN.match(self.key_id):
            raise ValueError("key id must be 1-32 letters, digits, '_' or '-'")
        if len(self.secret) < MIN_KEY_BYTES:
            raise ValueError(f"key {self.key_id} must be at least {MIN_KEY_BYTES} bytes")


def token_context(connection_id: str, kind: TokenKind) -> str:
    """The associated data binding a sealed token to its connection and kind, so a sealed value
    copied to another row (or swapped between access and refresh) does not open."""
    return f"optix.brokerage/{connection_id}/{kind}"


class TokenBox:
    """Seals with the current (first) key; opens with whichever key a value names."""

    def __init__(self, keys: Sequence[TokenKey]) -> None:
        if not keys:
            raise ValueError("at least one token key is required")
        ids = [k.key_id for k in keys]
        if len(set(ids)) != len(ids):
            raise ValueError("token key ids must be unique")
        self._current = keys[0].key_id
        self._boxes = {k.key_id: SecretBox(derive_key(k.secret, _PURPOSE)) for k in keys}

    @property
    def current_key_id(self) -> str:
        """The id of the key new values are sealed with."""
        return self._current

    def seal(self, plaintext: str, context: str) -> str:
        """Encrypt `plaintext` under the current key, bound to `context`."""
        return f"{self._current}:{self._boxes[self._current].seal(plaintext, context)}"

    def open(self, sealed: str, context: str) -> str | None:
        """Decrypt; None when the value was tampered with, sealed for another context, or sealed
        under a key that is no longer configured."""
        key_id, sep, inner = sealed.partition(":")
        box = self._boxes.get(key_id) if sep else None
        return None if box is None else box.open(inner, context)

    @staticmethod
    def key_id_of(sealed: str) -> str | None:
        """The key id a sealed value names, without opening it; None when it names none."""
        key_id, sep, _ = sealed.partition(":")
        return key_id if sep and KEY_ID_PATTERN.match(key_id) else None

    def needs_reseal(self, sealed: str) -> bool:
        """Whether the value is sealed under a key other than the current one."""
        return self.key_id_of(sealed) != self._current

    def reseal(self, sealed: str, context: str) -> str | None:
        """The value sealed under the current key (unchanged if it already is); None when it
        does not open."""
        if not self.needs_reseal(sealed):
            return sealed if self.open(sealed, context) is not None else None
        plain = self.open(sealed, context)
        return None if plain is None else self.seal(plain, context)


@dataclass(frozen=True, slots=True)
class SealedValue:
    """One stored sealed value, as a re-encryption pass sees it."""

    # Opaque to the pass: whatever the store needs to address the value (row id and column).
    row_key: str
    context: str
    sealed: str = field(repr=False)


class SealedValueStore(Protocol):
    """Where sealed values live (the slice's repository), walked in pages by `row_key`."""

    async def sealed_values(self, after: str | None, limit: int) -> Sequence[SealedValue]:
        """Up to `limit` values with row_key greater than `after` (all from the start when
        None), ordered by row_key."""
        ...

    async def replace_sealed(self, row_key: str, expected: str, replacement: str) -> bool:
        """Store `replacement` only if the value is still `expected` (a conditional UPDATE, so a
        token refreshed meanwhile is not overwritten); whether it was replaced."""
        ...


@dataclass
class ResealReport:
    """What a re-encryption pass did."""

    scanned: int = 0
    resealed: int = 0
    # Changed by someone else between the read and the write (already fresh, or a new token).
    skipped: int = 0
    # Did not open with any configured key: tampered, or sealed under a removed key.
    unreadable: list[str] = field(default_factory=list)


async def reseal_all(store: SealedValueStore, box: TokenBox, batch_size: int = 200) -> ResealReport:
    """Re-encrypt every stored value under the current key (the `optix` rotation command).
    Safe to run while serving and to run again; values that do not open are reported by row
    key, never logged with their contents."""
    report = ResealReport()
    after: str | None = None
    while True:
        batch = await store.sealed_values(after, batch_size)
        if not batch:
            return report
        for value in batch:
            report.scanned += 1
            if not box.needs_reseal(value.sealed):
                continue
            fresh = box.reseal(value.sealed, value.context)
            if fresh is None:
                report.unreadable.append(value.row_key)
                log.warning(
                    "sealed token does not open",
                    row=value.row_key,
                    key_id=box.key_id_of(value.sealed),
                )
                continue
            if await store.replace_sealed(value.row_key, value.sealed, fresh):
                report.resealed += 1
            else:
                report.skipped += 1
        after = batch[-1].row_key


LOCAL_KEY_ID = "local"


def build_token_box(keys: Sequence[TokenKey], fallback_key_file: Path) -> TokenBox:
    """The configured keys' box; without any, a key file created on first use (one process or
    a shared volume only: replicas must share OPTIX_BROKERAGE_TOKEN_KEYS)."""
    if keys:
        return TokenBox(keys)
    log.warning(
        "OPTIX_BROKERAGE_TOKEN_KEYS is not set; using the key file", path=str(fallback_key_file)
    )
    return TokenBox([TokenKey(LOCAL_KEY_ID, load_or_create_pepper(fallback_key_file))])
