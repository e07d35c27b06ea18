"""A small deterministic YAML writer for JSON-shaped data (the project has no YAML library):
the edge's envoy.yaml (envoy/optix_edge) and the Kubernetes manifests (tools/k8s.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

# Keys that YAML reads as plain strings; anything else (e.g. "@type") is quoted.
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")
# Plain words a YAML 1.1 reader takes for booleans or null.
_YAML11_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"})
# Characters a literal block scalar can hold as they are.
_BLOCK_SAFE = re.compile(r"^[\t\n\x20-\x7e\u00a0-\ud7ff\ue000-\ufffd]*$")

JsonValue = None | bool | int | float | str | Sequence["JsonValue"] | dict[str, "JsonValue"]


def _scalar(value: JsonValue) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    # JSON scalars are valid YAML scalars; quoting every string avoids YAML's implicit typing.
    return json.dumps(value)


def _key(key: str) -> str:
    plain = _PLAIN_KEY.match(key) and key.lower() not in _YAML11_WORDS
    return key if plain else json.dumps(key)


def _block(text: str, indent: str) -> list[str] | None:
    """A multi-line string as a literal block scalar (`|`), when it can be one exactly."""
    if "\n" not in text or not _BLOCK_SAFE.match(text) or text.startswith((" ", "\n")):
        return None
    body = text.removesuffix("\n")
    if body.endswith("\n") or any(line != line.rstrip(" ") for line in body.split("\n")):
        return None
    chomp = "" if text.endswith("\n") else "-"
    lines = [f"{indent}{line}" if line else "" for line in body.split("\n")]
    return [f"|{chomp}", *lines]


def _lines(value: JsonValue, indent: int, blocks: bool) -> list[str]:
    pad = "  " * indent
    if isinstance(value, dict):
        if not value:
            return [pad + "{}"]
        out: list[str] = []
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                out.append(f"{pad}{_key(key)}:")
                out.extend(_lines(item, indent + 1, blocks))
            elif blocks and isinstance(item, str) and (block := _block(item, pad + "  ")):
                out.append(f"{pad}{_key(key)}: {block[0]}")
                out.extend(block[1:])
            else:
                out.append(f"{pad}{_key(key)}: {_scalar(item)}")
        return out
    if isinstance(value, list):
        if not value:
            return [pad + "[]"]
        out = []
        for item in value:
            nested = _lines(item, indent + 1, blocks)
            # The first line of the item follows the dash; the rest keep their indentation.
            out.append(f"{pad}- {nested[0].lstrip()}")
            out.extend(nested[1:])
        return out
    return [pad + _scalar(value)]


def _comments(header: str) -> list[str]:
    return [f"# {line}".rstrip() for line in header.splitlines()]


def dump(value: JsonValue, header: str = "") -> str:
    """Render `value` as block-style YAML, preceded by `header` lines as comments."""
    return "\n".join([*_comments(header), *_lines(value, 0, blocks=False)]) + "\n"


def dump_all(documents: Sequence[JsonValue], header: str = "") -> str:
    """Documents as one multi-document YAML stream, `header` lines as comments on top; multi-line
    strings (embedded files) as literal blocks, so they read as the files they are."""
    parts = ["\n".join(_lines(doc, 0, blocks=True)) for doc in documents]
    return "\n".join(_comments(header)) + "\n---\n" + "\n---\n".join(parts) + "\n"
