"""Keys, tokens, the principal accessor, service identity and rate limits, without a server."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import jwt
import pytest

from optix_server.infra.auth.config import AuthSettings
from optix_server.infra.auth.interceptor import bearer_token
from optix_server.infra.auth.keys import KeyRing, SigningKey, load_keyring, write_new_key
from optix_server.infra.auth.principal import (
    Principal,
    PrincipalKind,
    current_principal,
    current_user_id,
    principal_scope,
)
from optix_server.infra.auth.service_identity import ServiceTokenSource
from optix_server.infra.auth.tokens import TokenAuthority
from optix_server.infra.cache import InMemoryCache, RedisCache
from optix_server.infra.errors import ResourceExhausted, Unauthenticated
from optix_server.infra.ratelimit import ClaimRequest, FailureLimiter, Limit
from tests.user.harness import ManualClock


def test_keys_persist_across_restarts(tmp_path: Path) -> None:
    clock = ManualClock()
    first = load_keyring(AuthSettings(), clock, tmp_path)
    second = load_keyring(AuthSettings(), clock, tmp_path)
    assert first.active.kid == second.active.kid
    (key_file,) = (tmp_path / "keys" / "jwt").glob("*.pem")
    assert key_file.stat().st_mode & 0o077 == 0


def test_rotation_keeps_old_tokens_valid_and_publishes_both(tmp_path: Path) -> None:
    clock = ManualClock()
    settings = AuthSettings()
    old = TokenAuthority(load_keyring(settings, clock, tmp_path), settings, clock)
    token = old.issue_access_token("u1", session_id="s", ttl=timedelta(minutes=15)).token
    clock.advance(timedelta(seconds=1))
    write_new_key(settings.key_directory(tmp_path), clock)
    new = TokenAuthority(load_keyring(settings, clock, tmp_path), settings, clock)
    assert new.keyring.active.kid != old.keyring.active.kid
    assert [k["kid"] for k in new.keyring.jwks()] == [
        new.keyring.active.kid,
        old.keyring.active.kid,
    ]
    assert new.verify(token).subject == "u1"
    fresh = new.issue_access_token("u2", session_id="s", ttl=timedelta(minutes=15)).token
    with pytest.raises(Unauthenticated):
        old.verify(fresh)  # the old ring does not know the new key


def test_staged_key_is_published_first_and_signs_from_its_time(tmp_path: Path) -> None:
    clock = ManualClock()
    settings = AuthSettings()
    ring = load_keyring(settings, clock, tmp_path)
    current = ring.active.kid
    staged = write_new_key(
        settings.key_directory(tmp_path), clock, activate_at=clock.now() + timedelta(hours=1)
    )
    # Another replica starting now knows the staged key but still signs with the current one.
    ring = load_keyring(settings, clock, tmp_path)
    authority = TokenAuthority(ring, settings, clock)
    assert ring.active.kid == current
    assert {k["kid"] for k in ring.jwks()} == {current, staged.kid}
    clock.advance(timedelta(hours=1))
    assert ring.active.kid == staged.kid  # no restart needed
    token = authority.issue_access_token("u", session_id="s", ttl=timedelta(minutes=5)).token
    assert authority.verify(token).subject == "u"


def test_a_remembered_token_still_expires_on_the_clock(tmp_path: Path) -> None:
    clock = ManualClock()
    settings = AuthSettings()
    authority = TokenAuthority(load_keyring(settings, clock, tmp_path), settings, clock)
    token = authority.issue_access_token("u1", session_id="s", ttl=timedelta(minutes=5)).token
    assert authority.verify(token).subject == "u1"
    assert authority.verify(token).subject == "u1"  # served from the verified-token memo
    clock.advance(timedelta(minutes=5) + settings.leeway + timedelta(seconds=1))
    with pytest.raises(Unauthenticated):
        authority.verify(token)


def test_a_remembered_token_dies_with_its_key(tmp_path: Path) -> None:
    clock = ManualClock()
    settings = AuthSettings()
    ring = load_keyring(settings, clock, tmp_path)
    authority = TokenAuthority(ring, settings, clock)
    token = authority.issue_access_token("u1", session_id="s", ttl=timedelta(minutes=5)).token
    assert authority.verify(token).subject == "u1"
    ring._keys.clear()  # the key is withdrawn from the ring
    with pytest.raises(Unauthenticated):
        authority.verify(token)


def test_keys_from_environment_pem(tmp_path: Path) -> None:
    clock = ManualClock()
    from optix_server.infra.auth.keys import private_key_pem

    a, b = (write_new_key(tmp_path / d, clock) for d in ("a", "b"))
    assert a.private_key is not None and b.private_key is not None
    pem = (private_key_pem(b.private_key) + private_key_pem(a.private_key)).decode()
    ring = load_keyring(AuthSettings(signing_keys_pem=pem), clock, tmp_path)
    assert ring.active.kid == b.kid and ring.verification_key(a.kid) is not None


def test_keyring_needs_a_private_active_key() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    public_only = SigningKey.from_public(Ed25519PrivateKey.generate().public_key())
    with pytest.raises(ValueError):
        KeyRing([public_only], ManualClock())


def test_service_identity(tmp_path: Path) -> None:
    clock = ManualClock()
    settings = AuthSettings()
    authority = TokenAuthority(load_keyring(settings, clock, tmp_path), settings, clock)
    source = ServiceTokenSource(authority, "alert", clock)
    token = source.token()
    assert source.token() == token  # cached while fresh
    principal = authority.verify(token)
    assert principal == dataclasses.replace(principal, kind=PrincipalKind.SERVICE, subject="alert")
    clock.advance(timedelta(minutes=5))
    assert source.token() != token  # renewed before expiry
    with principal_scope(principal):
        assert current_principal().subject == "alert"
        with pytest.raises(Unauthenticated):
            current_user_id()


def test_accessor_outside_an_rpc_is_unauthenticated() -> None:
    with pytest.raises(Unauthenticated):
        current_user_id()
    with principal_scope(Principal(PrincipalKind.USER, "u1", token_id="j")):
        assert current_user_id() == "u1"
    with pytest.raises(Unauthenticated):
        current_principal()


def _authority(tmp_path: Path) -> tuple[TokenAuthority, ManualClock]:
    clock = ManualClock()
    settings = AuthSettings()
    return TokenAuthority(load_keyring(settings, clock, tmp_path), settings, clock), clock


def _signed(authority: TokenAuthority, clock: ManualClock, **changes: object) -> str:
    """A user access token with `changes` to its claims, signed with the authority's key."""
    key = authority.keyring.active
    assert key.private_key is not None
    now = int(clock.now().timestamp())
    claims = {
        "iss": "optix",
        "aud": "optix-api",
        "sub": "u1",
        "iat": now,
        "exp": now + 300,
        "jti": "j1",
        "sid": "s1",
        **changes,
    }
    headers = {"kid": key.kid, "typ": "at+jwt"}
    return jwt.encode(claims, key.private_key, algorithm="EdDSA", headers=headers)


def test_nbf_and_iat_are_checked_with_the_leeway(tmp_path: Path) -> None:
    authority, clock = _authority(tmp_path)
    now = int(clock.now().timestamp())
    leeway = int(AuthSettings().leeway.total_seconds())
    for accepted in ({"nbf": now}, {"nbf": now + leeway}, {"iat": now + leeway}):
        assert authority.verify(_signed(authority, clock, **accepted)).subject == "u1"
    refused = (
        {"nbf": now + 3600},
        {"nbf": now + leeway + 1},
        {"iat": now + leeway + 1},
        {"nbf": str(now)},
        {"nbf": True},
        {"iat": True},
    )
    for claims in refused:
        with pytest.raises(Unauthenticated) as caught:
            authority.verify(_signed(authority, clock, **claims))
        assert caught.value.reason == "INVALID_TOKEN", claims


def test_a_future_nbf_is_accepted_once_it_arrives(tmp_path: Path) -> None:
    authority, clock = _authority(tmp_path)
    token = _signed(authority, clock, nbf=int(clock.now().timestamp()) + 60)
    with pytest.raises(Unauthenticated):
        authority.verify(token)
    clock.advance(timedelta(seconds=60))
    assert authority.verify(token).subject == "u1"


@pytest.mark.parametrize(
    "spoil",
    [
        lambda t: t + "==",
        lambda t: t + "=",
        lambda t: t + " ",
        lambda t: " " + t,
        lambda t: t + "\n",
        lambda t: t + "\t",
        lambda t: t.replace(".", ".\n", 1),
        lambda t: t + ".",
        lambda t: t + ".e30",
        lambda t: t + "!",
        lambda t: t + "+",
        lambda t: t + "/",
        lambda t: t + "\u00e9",
        lambda t: t.replace(".", "=.", 1),
        lambda t: t.rsplit(".", 1)[0] + ".",
        lambda t: t.rsplit(".", 1)[0],
    ],
    ids=[
        "==",
        "=",
        "trailing space",
        "leading space",
        "newline",
        "tab",
        "newline inside",
        "empty fourth segment",
        "fourth segment",
        "!",
        "+",
        "/",
        "non-ascii",
        "padded header",
        "empty signature",
        "two segments",
    ],
)
def test_only_the_exact_compact_form_is_accepted(
    tmp_path: Path, spoil: Callable[[str], str]
) -> None:
    authority, clock = _authority(tmp_path)
    token = _signed(authority, clock)
    assert authority.verify(token).subject == "u1"  # the control, also memoised now
    with pytest.raises(Unauthenticated) as caught:
        authority.verify(spoil(token))
    assert caught.value.reason == "INVALID_TOKEN"


def test_a_non_canonical_base64_spelling_is_refused(tmp_path: Path) -> None:
    authority, clock = _authority(tmp_path)
    token = _signed(authority, clock)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # A 64-byte signature leaves 4 unused bits in its last character: flipping the lowest
    # gives another spelling of the same bytes, which must not verify as the same token.
    twin = token[:-1] + alphabet[alphabet.index(token[-1]) ^ 1]
    with pytest.raises(Unauthenticated):
        authority.verify(twin)


def test_oversized_tokens_are_refused_before_any_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    authority, clock = _authority(tmp_path)
    limit = AuthSettings().max_token_bytes
    # Correctly signed, and still refused: nobody mints tokens this big.
    big = _signed(authority, clock, pad="x" * limit)
    assert len(big) > limit

    def must_not_run(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("an oversized token reached the JWT parser")

    monkeypatch.setattr(jwt, "get_unverified_header", must_not_run)
    monkeypatch.setattr(jwt, "decode", must_not_run)
    for token in (big, "a" * (limit + 1)):
        with pytest.raises(Unauthenticated) as caught:
            authority.verify(token)
        assert caught.value.reason == "INVALID_TOKEN"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer   abc.def.ghi", "abc.def.ghi"),
        # What follows the token stays part of it, for the strict check to refuse.
        ("Bearer abc.def.ghi ", "abc.def.ghi "),
        ("Bearer abc.def.ghi==", "abc.def.ghi=="),
        ("Bearer ", None),
        ("Basic abc", None),
    ],
)
def test_bearer_token_keeps_what_follows_the_token(value: str, expected: str | None) -> None:
    assert bearer_token((("authorization", value),)) == expected


async def _exercise_limiter(limiter: FailureLimiter, clock: ManualClock) -> None:
    limit = Limit("t", 3, timedelta(minutes=15))
    victim = [ClaimRequest(limit, "victim")]
    for _ in range(3):
        await limiter.claim(victim)  # three failed attempts keep their claims
    with pytest.raises(ResourceExhausted) as caught:
        await limiter.claim(victim)
    retry_after = caught.value.retry_after
    assert retry_after is not None and timedelta(0) < retry_after <= timedelta(minutes=15)
    await limiter.release(await limiter.claim([ClaimRequest(limit, "someone else")]))
    clock.advance(retry_after)
    await limiter.claim(victim)


async def _exercise_burst(limiter: FailureLimiter) -> None:
    # 20 guesses at once: counting before checking lets exactly the limit through, however
    # the attempts interleave.
    limit = Limit("burst", 5, timedelta(minutes=15))
    results = await asyncio.gather(
        *(limiter.claim([ClaimRequest(limit, "victim")]) for _ in range(20)),
        return_exceptions=True,
    )
    assert sum(1 for r in results if isinstance(r, ResourceExhausted)) == 15
    # A success gives its attempt back.
    released = next(r for r in results if not isinstance(r, BaseException))
    await limiter.release(released)
    await limiter.claim([ClaimRequest(limit, "victim")])


async def test_limiter_in_process() -> None:
    clock = ManualClock()
    await _exercise_limiter(FailureLimiter(InMemoryCache(), clock), clock)
    await _exercise_burst(FailureLimiter(InMemoryCache(), clock))


async def test_limiter_on_redis(redis_ns: tuple[str, str]) -> None:
    from redis.asyncio import Redis

    clock = ManualClock()
    cache = RedisCache(Redis.from_url(redis_ns[0]), redis_ns[1])
    try:
        await _exercise_limiter(FailureLimiter(cache, clock), clock)
        await _exercise_burst(FailureLimiter(cache, clock))
    finally:
        await cache.close()
