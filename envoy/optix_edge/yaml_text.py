"""A small deterministic YAML writer for JSON-shaped data (the project has no YAML library)."""

from __future__ import annotations

import json
import re

# Keys that YAML reads as plain strings; anything else (e.g. "@type") is quoted.
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")

JsonValue = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]


def _scalar(value: JsonValue) -> str:
    # JSON scalars are valid YAML scalars; quoting every string avoids YAML's implicit typing.
    return json.dumps(value)


def _key(key: str) -> str:
    return key if _PLAIN_KEY.match(key) else json.dumps(key)


def _lines(value: JsonValue, indent: int) -> list[str]:
    pad = "  " * indent
    if isinstance(value, dict):
        if not value:
            return [pad + "{}"]
        out: list[str] = []
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                out.append(f"{pad}{_key(key)}:")
                out.extend(_lines(item, indent + 1))
            else:
                out.append(f"{pad}{_key(key)}: {_inline(item)}")
        return out
    if isinstance(value, list):
        if not value:
            return [pad + "[]"]
        out = []
        for item in value:
            nested = _lines(item, indent + 1)
            # The first line of the item follows the dash; the rest keep their indentation.
            out.append(f"{pad}- {nested[0].lstrip()}")
            out.extend(nested[1:])
        return out
    return [pad + _scalar(value)]


def _inline(value: JsonValue) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _scalar(value)


def dump(value: JsonValue, header: str = "") -> str:
    """Render `value` as block-style YAML, preceded by `header` lines as comments."""
    comments = [f"# {line}".rstrip() for line in header.splitlines()]
    return "\n".join([*comments, *_lines(value, 0)]) + "\n"
