"""Every malformed, forged or misused token is UNAUTHENTICATED (RFC 8725 checks)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from grpc_health.v1 import health_pb2, health_pb2_grpc

from optix.user.v1 import user_service_pb2
from tests.support.errors import expect_error
from tests.user.harness import UserHarness, bearer


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Forge:
    """Builds tokens that differ from a valid one in exactly one way."""

    def __init__(self, users: UserHarness, user_id: str) -> None:
        self.users = users
        key = users.authority.keyring.active
        assert key.private_key is not None
        self.key = key.private_key
        self.kid = key.kid
        now = int(users.clock.now().timestamp())
        self.claims: dict[str, Any] = {
            "iss": "optix",
            "aud": "optix-api",
            "sub": user_id,
            "iat": now,
            "exp": now + 600,
            "jti": "j1",
            "sid": "s1",
        }
        self.headers: dict[str, Any] = {"kid": self.kid, "typ": "at+jwt"}

    def sign(
        self,
        drop: str = "",
        key: Any = None,
        algorithm: str = "EdDSA",
        **changes: Any,
    ) -> str:
        claims = {**self.claims, **changes}
        claims.pop(drop, None)
        headers = dict(self.headers)
        headers.pop(drop, None)
        return jwt.encode(claims, key or self.key, algorithm=algorithm, headers=headers)


def _alg_none(f: Forge) -> str:
    return f"{_b64({'alg': 'none', 'typ': 'at+jwt', 'kid': f.kid})}.{_b64(f.claims)}."


def _hs256_with_public_key(f: Forge) -> str:
    public = f.key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    header = {"alg": "HS256", "typ": "at+jwt", "kid": f.kid}
    # PyJWT refuses asymmetric-looking HMAC keys, so build the confusion attack by hand.
    signing_input = f"{_b64(header)}.{_b64(f.claims)}"
    signature = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


def _tampered_payload(f: Forge) -> str:
    header, _, signature = f.sign().split(".")
    return f"{header}.{_b64({**f.claims, 'sub': 'someone-else'})}.{signature}"


def _padded_signature(f: Forge) -> str:
    # The same signature in standard padded base64: equal bytes, but not the compact form.
    header, payload, signature = f.sign().split(".")
    raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    return f"{header}.{payload}.{base64.b64encode(raw).decode()}"


def _headers(f: Forge, **changes: Any) -> str:
    return jwt.encode(f.claims, f.key, algorithm="EdDSA", headers={**f.headers, **changes})


HOSTILE: dict[str, Callable[[Forge], str]] = {
    "alg none": _alg_none,
    "hs256 key confusion": _hs256_with_public_key,
    "wrong signature": lambda f: f.sign(key=Ed25519PrivateKey.generate()),
    "tampered payload": _tampered_payload,
    "unknown kid": lambda f: _headers(f, kid="not-a-known-kid"),
    "missing kid": lambda f: f.sign(drop="kid"),
    "missing typ": lambda f: f.sign(drop="typ"),
    "wrong typ": lambda f: _headers(f, typ="JWT"),
    "missing exp": lambda f: f.sign(drop="exp"),
    "missing aud": lambda f: f.sign(drop="aud"),
    "missing iss": lambda f: f.sign(drop="iss"),
    "missing sub": lambda f: f.sign(drop="sub"),
    "missing iat": lambda f: f.sign(drop="iat"),
    "missing jti": lambda f: f.sign(drop="jti"),
    "wrong aud": lambda f: f.sign(aud="someone-else"),
    "wrong iss": lambda f: f.sign(iss="evil"),
    "expired": lambda f: f.sign(iat=f.claims["iat"] - 3600, exp=f.claims["iat"] - 60),
    "issued in the future": lambda f: f.sign(iat=f.claims["iat"] + 600, exp=f.claims["exp"] + 600),
    "issued just beyond the leeway": lambda f: f.sign(iat=f.claims["iat"] + 6),
    "not valid for an hour": lambda f: f.sign(nbf=f.claims["iat"] + 3600),
    "not valid just beyond the leeway": lambda f: f.sign(nbf=f.claims["iat"] + 6),
    "nbf not a number": lambda f: f.sign(nbf="now"),
    "lifetime too long": lambda f: f.sign(exp=f.claims["iat"] + 30 * 86400),
    "exp not a number": lambda f: f.sign(exp="tomorrow"),
    "garbage": lambda f: "not.a.jwt",
    # A valid token with bytes appended: PyJWT's base64 decoding alone would accept "==".
    "padding appended": lambda f: f.sign() + "==",
    "one pad appended": lambda f: f.sign() + "=",
    "space appended": lambda f: f.sign() + " ",
    "space inside": lambda f: f.sign().replace(".", ". ", 1),
    "extra segment": lambda f: f.sign() + ".e30",
    "empty extra segment": lambda f: f.sign() + ".",
    "two segments": lambda f: f.sign().rsplit(".", 1)[0],
    "non-base64url char appended": lambda f: f.sign() + "!",
    "standard base64 char appended": lambda f: f.sign() + "+",
    "padded signature": lambda f: _padded_signature(f),
    "empty": lambda f: "",
    # Over our 4 KiB cap, under grpc-core's own 8 KiB metadata limit (which answers differently).
    "oversized": lambda f: "a" * 5_000,
}


@pytest.fixture
async def forge(users: UserHarness) -> Forge:
    registered = await users.register()
    return Forge(users, registered.user.name.removeprefix("users/"))


async def test_a_faithful_forgery_is_accepted(users: UserHarness, forge: Forge) -> None:
    # The control: the forge, unmodified, makes a valid token, so each case below fails for
    # exactly the one thing it changes.
    await users.stub.GetMe(user_service_pb2.GetMeRequest(), metadata=bearer(forge.sign()))


@pytest.mark.parametrize(
    "changes",
    [
        {"nbf": 0},  # relative to iat: valid from the moment it was issued
        {"nbf": -60},
        {"nbf": 5},  # ahead of this server's clock, within the 5 s leeway
        {"iat": 5},
    ],
    ids=["nbf at iat", "nbf in the past", "nbf within leeway", "iat within leeway"],
)
async def test_times_within_the_leeway_are_accepted(
    users: UserHarness, forge: Forge, changes: dict[str, int]
) -> None:
    # Another replica's clock a little ahead must not refuse its fresh tokens.
    claims = {name: forge.claims["iat"] + offset for name, offset in changes.items()}
    token = forge.sign(**claims)
    await users.stub.GetMe(user_service_pb2.GetMeRequest(), metadata=bearer(token))


@pytest.mark.parametrize("case", sorted(HOSTILE))
async def test_hostile_access_token_is_unauthenticated(
    users: UserHarness, forge: Forge, case: str
) -> None:
    token = HOSTILE[case](forge)
    await expect_error(
        grpc.StatusCode.UNAUTHENTICATED,
        users.stub.GetMe(user_service_pb2.GetMeRequest(), metadata=bearer(token)),
    )


async def test_refresh_token_as_access_token(users: UserHarness) -> None:
    tokens = (await users.register()).tokens
    await expect_error(
        grpc.StatusCode.UNAUTHENTICATED,
        users.stub.GetMe(user_service_pb2.GetMeRequest(), metadata=bearer(tokens.refresh_token)),
    )


async def test_access_token_as_refresh_token(users: UserHarness) -> None:
    tokens = (await users.register()).tokens
    await expect_error(
        grpc.StatusCode.UNAUTHENTICATED,
        users.stub.RefreshToken(
            user_service_pb2.RefreshTokenRequest(refresh_token=tokens.access_token)
        ),
    )


async def test_service_token_is_not_a_user(users: UserHarness) -> None:
    token = users.authority.issue_service_token("alert").token
    await expect_error(
        grpc.StatusCode.UNAUTHENTICATED,
        users.stub.GetMe(user_service_pb2.GetMeRequest(), metadata=bearer(token)),
    )


@pytest.mark.parametrize(
    "metadata",
    [
        (),
        (("authorization", "Basic YWxpY2U6cGFzcw=="),),
        (("authorization", "Bearer"),),
    ],
)
async def test_missing_or_malformed_authorization(
    users: UserHarness, metadata: tuple[tuple[str, str], ...]
) -> None:
    await expect_error(
        grpc.StatusCode.UNAUTHENTICATED,
        users.stub.GetMe(user_service_pb2.GetMeRequest(), metadata=metadata),
    )


async def test_two_authorization_headers_are_refused(users: UserHarness) -> None:
    token = (await users.register()).tokens.access_token
    await expect_error(
        grpc.StatusCode.UNAUTHENTICATED,
        users.stub.GetMe(
            user_service_pb2.GetMeRequest(), metadata=(*bearer(token), *bearer(token))
        ),
    )


async def test_access_token_expires_after_its_ttl(users: UserHarness) -> None:
    token = (await users.register()).tokens.access_token
    users.clock.advance(timedelta(minutes=15, seconds=6))
    await expect_error(
        grpc.StatusCode.UNAUTHENTICATED,
        users.stub.GetMe(user_service_pb2.GetMeRequest(), metadata=bearer(token)),
    )


async def test_public_methods_need_no_token(users: UserHarness) -> None:
    jwks = await users.stub.GetJwks(user_service_pb2.GetJwksRequest())
    token = (await users.register()).tokens.access_token
    kid = jwt.get_unverified_header(token)["kid"]
    assert [k.kid for k in jwks.keys] == [kid]
    assert jwks.keys[0].kty == "OKP" and jwks.keys[0].crv == "Ed25519"
    health = health_pb2_grpc.HealthStub(users.channel)
    reply = await health.Check(health_pb2.HealthCheckRequest(service="optix.user.v1.UserService"))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
