"""Typed readers for OPTIX_* environment variables, shared by every settings section."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping


class SettingsError(ValueError):
    """An OPTIX_* variable has a value that cannot be used; the message names the variable."""


def env_str(env: Mapping[str, str], name: str, default: str) -> str:
    """Read a string variable, falling back to `default` when unset or empty."""
    value = env.get(name, "").strip()
    return value or default


def env_int(env: Mapping[str, str], name: str, default: int, *, minimum: int | None = None) -> int:
    """Read an integer variable; a non-integer or out-of-range value is a SettingsError."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise SettingsError(f"{name} must be >= {minimum}, got {value}")
    return value


def env_float(
    env: Mapping[str, str], name: str, default: float, *, minimum: float | None = None
) -> float:
    """Read a float variable; a non-number or out-of-range value is a SettingsError."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise SettingsError(f"{name} must be >= {minimum}, got {value}")
    return value


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    """Read a boolean variable (1/0, true/false, yes/no, on/off)."""
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be a boolean, got {raw!r}")


def env_secret(env: Mapping[str, str], name: str, *, min_bytes: int = 32) -> bytes | None:
    """A base64 secret of at least `min_bytes` bytes (None when unset)."""
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        value = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise SettingsError(f"{name} must be base64") from None
    if len(value) < min_bytes:
        raise SettingsError(f"{name} must decode to at least {min_bytes} bytes")
    return value
