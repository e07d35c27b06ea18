"""AuthSettings: token issuer/audience, signing-key sources and service-token lifetime."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from optix_server.infra.env import SettingsError, env_bool, env_int, env_str


@dataclass(frozen=True)
class AuthSettings:
    """How tokens are signed and verified; shared by every service (the interceptor needs it)."""

    issuer: str = "optix"
    audience: str = "optix-api"
    # Directory of Ed25519 private keys (PEM, PKCS#8); the newest file signs, all verify.
    # None: `<var_dir>/keys/jwt`.
    keys_dir: Path | None = None
    # Production: PEM private key(s) from a secret store, the first signs; overrides keys_dir.
    signing_keys_pem: str = ""
    # PEM public keys of retired signing keys that must still verify until their tokens expire.
    verify_keys_pem: str = ""
    # Create a key in keys_dir when it has none (the laptop default; turn off in production).
    generate_missing_key: bool = True
    # Clock skew tolerated between the issuing and the verifying host.
    leeway: timedelta = timedelta(seconds=5)
    # Tokens claiming a longer life than this are refused even when correctly signed.
    max_token_lifetime: timedelta = timedelta(hours=1)
    service_token_ttl: timedelta = timedelta(minutes=5)
    # Largest Authorization value looked at; longer ones are refused before any parsing.
    max_token_bytes: int = 4096

    def key_directory(self, var_dir: Path) -> Path:
        """Where signing keys live for a process whose var dir is `var_dir`."""
        return self.keys_dir if self.keys_dir is not None else var_dir / "keys" / "jwt"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AuthSettings:
        """Read OPTIX_AUTH_* variables."""
        settings = cls(
            issuer=env_str(env, "OPTIX_AUTH_ISSUER", "optix"),
            audience=env_str(env, "OPTIX_AUTH_AUDIENCE", "optix-api"),
            keys_dir=Path(env["OPTIX_AUTH_KEYS_DIR"]) if env.get("OPTIX_AUTH_KEYS_DIR") else None,
            signing_keys_pem=env.get("OPTIX_AUTH_SIGNING_KEYS_PEM", ""),
            verify_keys_pem=env.get("OPTIX_AUTH_VERIFY_KEYS_PEM", ""),
            generate_missing_key=env_bool(env, "OPTIX_AUTH_GENERATE_MISSING_KEY", True),
            leeway=timedelta(seconds=env_int(env, "OPTIX_AUTH_LEEWAY_SECONDS", 5, minimum=0)),
            max_token_lifetime=timedelta(
                seconds=env_int(env, "OPTIX_AUTH_MAX_TOKEN_LIFETIME_SECONDS", 3600, minimum=60)
            ),
            service_token_ttl=timedelta(
                seconds=env_int(env, "OPTIX_AUTH_SERVICE_TOKEN_TTL_SECONDS", 300, minimum=30)
            ),
        )
        if settings.service_token_ttl > settings.max_token_lifetime:
            raise SettingsError("OPTIX_AUTH_SERVICE_TOKEN_TTL_SECONDS exceeds the max lifetime")
        return settings
