"""Unique accounts for end-to-end tests (they share one server for the session)."""

from __future__ import annotations

import uuid

PASSWORD = "Blue-Harbor-Lantern-42"


def new_email(tag: str) -> str:
    """A fresh, valid email address."""
    return f"{tag}-{uuid.uuid4().hex[:12]}@example.com"
