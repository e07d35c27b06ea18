"""Checks on free text that users name things with."""

from __future__ import annotations

import unicodedata

# Control and format characters, and line/paragraph separators: invisible or layout-breaking.
_CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def has_control_characters(text: str) -> bool:
    """Whether `text` holds a control, format or line/paragraph separator character."""
    return any(unicodedata.category(ch) in _CONTROL_CATEGORIES for ch in text)
