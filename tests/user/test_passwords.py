"""Password hashing and policy, without a server."""

from __future__ import annotations

import asyncio
import threading

import bcrypt
import pytest

from optix_server.infra.errors import ResourceExhausted
from optix_server.infra.passwords import (
    PasswordHasher,
    PasswordHasherConfig,
    PasswordPolicy,
    load_common_passwords,
)


def _hasher(**overrides: object) -> PasswordHasher:
    config = {"pepper": b"k" * 32, "cost": 4, **overrides}
    return PasswordHasher(PasswordHasherConfig(**config))  # type: ignore[arg-type]


async def test_hash_verify_and_pepper() -> None:
    hasher = _hasher()
    stored = await hasher.hash("a fine password")
    assert "a fine password" not in stored
    assert await hasher.verify("a fine password", stored)
    assert not await hasher.verify("a fine passworD", stored)
    # Another pepper: the same stored hash no longer verifies (a DB dump alone is not enough).
    assert not await _hasher(pepper=b"z" * 32).verify("a fine password", stored)
    hasher.close()


async def test_long_passwords_are_not_truncated() -> None:
    hasher = _hasher()
    base = "x" * 100
    stored = await hasher.hash(base + "1")
    assert not await hasher.verify(base + "2", stored)
    hasher.close()


async def test_unknown_user_path_costs_a_bcrypt_check() -> None:
    hasher = _hasher()
    calls: list[str] = []
    original = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        calls.append(threading.current_thread().name)
        return original(password, hashed)

    bcrypt.checkpw = counting  # type: ignore[assignment]
    try:
        assert not await hasher.verify("whatever password", None)
    finally:
        bcrypt.checkpw = original  # type: ignore[assignment]
    # One check ran, and not on the event loop's thread.
    assert len(calls) == 1 and calls[0].startswith("bcrypt")
    hasher.close()


async def test_needs_rehash_when_cost_changes() -> None:
    old = await _hasher(cost=4).hash("another password")
    assert not _hasher(cost=4).needs_rehash(old)
    assert _hasher(cost=5).needs_rehash(old)
    assert _hasher().needs_rehash("$2b$04$legacy-without-prehash")


async def test_overload_is_refused_fast_not_queued_forever() -> None:
    hasher = _hasher(max_workers=1, max_pending=2, cost=10)
    results = await asyncio.gather(
        *(hasher.hash(f"password number {i}") for i in range(6)), return_exceptions=True
    )
    refused = [r for r in results if isinstance(r, ResourceExhausted)]
    assert refused and all(r.retry_after is not None for r in refused)
    assert sum(isinstance(r, str) for r in results) >= 2
    hasher.close()


def test_malformed_stored_hash_never_verifies() -> None:
    hasher = _hasher()
    assert not asyncio.run(hasher.verify("x" * 10, "hmac-sha256+bcrypt$garbage"))
    hasher.close()


@pytest.mark.parametrize(
    ("password", "ok"),
    [
        ("correct horse battery", True),
        ("short", False),
        ("password", False),
        ("PASSWORD1", False),
        ("iloveyou", False),
        ("1234567890", False),
        ("x" * 256, False),  # one repeated character
        ("ab" * 128, True),
        ("ab" * 129, False),
        ("tab\there ok?", False),
        ("alice@example.com", False),
    ],
)
def test_policy(password: str, ok: bool) -> None:
    problems = PasswordPolicy().problems(password, email="alice@example.com")
    assert (not problems) == ok, problems
    assert all(password not in p for p in problems)


def test_common_list_is_substantial() -> None:
    common = load_common_passwords()
    # ASVS 6.2.4: at least the 3,000 most common that meet the length rule.
    assert sum(1 for p in common if len(p) >= 8) >= 3000
    assert {"123456", "password", "qwerty123", "letmein"} <= common
    # Well down the frequency list, and not in the bundled file.
    assert {"scorpion", "startrek", "topflite"} <= common
