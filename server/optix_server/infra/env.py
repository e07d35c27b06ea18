"""Typed readers for OPTIX_* environment variables, shared by every settings section."""

from __future__ import annotations

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
