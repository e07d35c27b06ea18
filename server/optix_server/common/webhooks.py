"""Webhook URLs users give for notifications (the user slice's preferences, alerts)."""

from __future__ import annotations

from urllib.parse import urlsplit

from optix_server.common.text import has_control_characters
from optix_server.infra.errors import ViolationCollector

MAX_WEBHOOK_URL = 2048


def check_webhook_url(value: str, path: str, errors: ViolationCollector) -> None:
    """Empty, or an absolute https:// URL with a host and no credentials."""
    if not value:
        return
    if len(value) > MAX_WEBHOOK_URL:
        errors.add(path, f"must be at most {MAX_WEBHOOK_URL} characters")
        return
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        errors.add(path, "must be a valid URL")
        return
    if has_control_characters(value) or " " in value:
        errors.add(path, "must not contain spaces or control characters")
    elif parts.scheme != "https" or not host:
        errors.add(path, "must be an https:// URL with a host")
    elif parts.username or parts.password:
        errors.add(path, "must not contain credentials")
