"""Password hashing (bcrypt over an HMAC-SHA256 pre-hash) and the password policy."""

from __future__ import annotations

from optix_server.infra.passwords.hasher import PasswordHasher, PasswordHasherConfig
from optix_server.infra.passwords.policy import PasswordPolicy, load_common_passwords

__all__ = ["PasswordHasher", "PasswordHasherConfig", "PasswordPolicy", "load_common_passwords"]
