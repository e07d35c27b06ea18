"""Access and service JWTs: minted with the active Ed25519 key, verified strictly (RFC 8725)."""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

import jwt

from optix_server.infra.auth.clock import Clock
from optix_server.infra.auth.config import AuthSettings
from optix_server.infra.auth.keys import KeyRing
from optix_server.infra.auth.principal import Principal, PrincipalKind
from optix_server.infra.auth.verified_cache import VerifiedToken, VerifiedTokenCache
from optix_server.infra.errors import Unauthenticated

ALGORITHM = "EdDSA"
# Explicit typing (RFC 8725 3.11) so a token of one kind can never pass as another.
ACCESS_TOKEN_TYPE = "at+jwt"
SERVICE_TOKEN_TYPE = "optix-service+jwt"
_TYPES: Mapping[str, PrincipalKind] = MappingProxyType(
    {ACCESS_TOKEN_TYPE: PrincipalKind.USER, SERVICE_TOKEN_TYPE: PrincipalKind.SERVICE}
)
_REQUIRED_CLAIMS = ("iss", "aud", "sub", "iat", "exp", "jti")
_SERVICE_PREFIX = "service:"
# Compact JWS exactly (RFC 7515 7.1): three unpadded base64url segments and nothing else. PyJWT's
# decoding is lenient (it accepts a valid token with "==" appended), so the shape is checked first.
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class IssuedToken:
    """A freshly minted token and when it expires."""

    token: str
    expire_time: datetime


def _invalid() -> Unauthenticated:
    # One message for every failure: which check failed is of use only to an attacker.
    return Unauthenticated("invalid or expired access token", reason="INVALID_TOKEN")


def _is_compact_jws(token: str) -> bool:
    """Whether `token` is exactly three canonical, unpadded base64url segments."""
    if _COMPACT_JWS.fullmatch(token) is None:
        return False
    for segment in token.split("."):
        try:
            raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        except (binascii.Error, ValueError):
            return False
        # Re-encoding must give the same text: one token has exactly one spelling, so stray
        # trailing bits cannot make a second string that verifies as the same token.
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != segment:
            return False
    return True


def _int_claim(claims: Mapping[str, Any], name: str) -> int | None:
    """The integer value of a time claim; bools and other types are not times."""
    value = claims.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class TokenAuthority:
    """Mints user access tokens and service tokens, and verifies either into a Principal."""

    def __init__(self, keyring: KeyRing, settings: AuthSettings, clock: Clock) -> None:
        self._keyring = keyring
        self._settings = settings
        self._clock = clock
        self._verified = VerifiedTokenCache()

    @property
    def keyring(self) -> KeyRing:
        """The keys in use (for publishing the JWKS)."""
        return self._keyring

    def _mint(
        self, subject: str, token_type: str, ttl: timedelta, extra: dict[str, Any]
    ) -> IssuedToken:
        if ttl > self._settings.max_token_lifetime:
            raise ValueError("token lifetime exceeds the configured maximum")
        now = self._clock.now()
        expire = now + ttl
        claims: dict[str, Any] = {
            "iss": self._settings.issuer,
            "aud": self._settings.audience,
            "sub": subject,
            "iat": int(now.timestamp()),
            "exp": int(expire.timestamp()),
            "jti": secrets.token_urlsafe(16),
            **extra,
        }
        key = self._keyring.active
        assert key.private_key is not None
        token = jwt.encode(
            claims,
            key.private_key,
            algorithm=ALGORITHM,
            headers={"kid": key.kid, "typ": token_type},
        )
        return IssuedToken(
            token=token, expire_time=datetime.fromtimestamp(claims["exp"], now.tzinfo)
        )

    def issue_access_token(self, user_id: str, *, session_id: str, ttl: timedelta) -> IssuedToken:
        """A short-lived access token for `user_id`, tied to a sign-in session (token family)."""
        return self._mint(user_id, ACCESS_TOKEN_TYPE, ttl, {"sid": session_id})

    def issue_service_token(self, service_name: str) -> IssuedToken:
        """A token proving that the caller is the OPTIX service `service_name`."""
        return self._mint(
            _SERVICE_PREFIX + service_name, SERVICE_TOKEN_TYPE, self._settings.service_token_ttl, {}
        )

    def verify(self, token: str) -> Principal:
        """The principal a token proves; Unauthenticated for anything not exactly right."""
        # Oversized tokens are refused before anything else looks at them (memo, parsing, crypto).
        if not token or len(token) > self._settings.max_token_bytes:
            raise _invalid()
        cached = self._verified.get(token)
        if cached is not None:
            # Same bytes as a token that passed every check: only time and the key's presence
            # can have changed since.
            now = self._clock.now().timestamp()
            leeway = self._settings.leeway.total_seconds()
            if cached.expires_at > now - leeway and self._keyring.verification_key(cached.kid):
                return cached.principal
            self._verified.discard(token)
        principal, expires_at, kid = self._verify_fully(token)
        self._verified.put(token, VerifiedToken(principal, expires_at, kid))
        return principal

    def seconds_left(self, principal: Principal) -> float | None:
        """How long the token behind `principal` is still accepted (leeway included), for calls
        that outlive their start such as streams; None when it has no expiry."""
        if principal.expires_at <= 0:
            return None
        leeway = self._settings.leeway.total_seconds()
        return principal.expires_at + leeway - self._clock.now().timestamp()

    def _verify_fully(self, token: str) -> tuple[Principal, float, str]:
        if not _is_compact_jws(token):
            raise _invalid()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _invalid() from None
        kid = header.get("kid")
        kind = _TYPES.get(str(header.get("typ")))
        # Pin the algorithm ourselves before PyJWT sees the token: alg=none, HS256 with the public
        # key as secret, or any other algorithm is refused outright.
        if header.get("alg") != ALGORITHM or not isinstance(kid, str) or kind is None:
            raise _invalid()
        public_key = self._keyring.verification_key(kid)
        if public_key is None:
            raise _invalid()
        try:
            claims = jwt.decode(
                token,
                public_key,
                algorithms=[ALGORITHM],
                audience=self._settings.audience,
                issuer=self._settings.issuer,
                # Time checks are done below against the injectable clock.
                options={
                    "require": list(_REQUIRED_CLAIMS),
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.PyJWTError:
            raise _invalid() from None
        self._check_times(claims)
        return self._principal(kind, claims), float(claims["exp"]), kid

    def _check_times(self, claims: dict[str, Any]) -> None:
        exp, iat = _int_claim(claims, "exp"), _int_claim(claims, "iat")
        if exp is None or iat is None:
            raise _invalid()
        now = self._clock.now().timestamp()
        leeway = self._settings.leeway.total_seconds()
        if exp <= now - leeway or iat > now + leeway:
            raise _invalid()
        # nbf is optional (we never mint it), but when present it binds like exp does.
        if "nbf" in claims:
            nbf = _int_claim(claims, "nbf")
            if nbf is None or nbf > now + leeway:
                raise _invalid()
        if exp - iat > self._settings.max_token_lifetime.total_seconds():
            raise _invalid()

    @staticmethod
    def _principal(kind: PrincipalKind, claims: dict[str, Any]) -> Principal:
        subject, jti = claims.get("sub"), claims.get("jti")
        if not isinstance(subject, str) or not subject or not isinstance(jti, str):
            raise _invalid()
        if kind is PrincipalKind.SERVICE:
            if not subject.startswith(_SERVICE_PREFIX):
                raise _invalid()
            return Principal(
                kind, subject[len(_SERVICE_PREFIX) :], token_id=jti, expires_at=float(claims["exp"])
            )
        session = claims.get("sid", "")
        if subject.startswith(_SERVICE_PREFIX) or not isinstance(session, str):
            raise _invalid()
        return Principal(
            kind, subject, token_id=jti, session_id=session, expires_at=float(claims["exp"])
        )
