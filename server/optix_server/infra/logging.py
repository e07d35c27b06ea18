"""Structured logging (structlog) with a redaction step so secrets never reach a log line."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog

# Keys whose values are never logged, whatever the caller passes.
SENSITIVE_KEYS = frozenset(
    {
        "password",
        "new_password",
        "current_password",
        "token",
        "access_token",
        "refresh_token",
        "secret",
        "totp_code",
        "recovery_code",
        "code",
        "authorization",
        "pepper",
        "password_hash",
        "client_secret",
    }
)


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor replacing the values of sensitive keys with a placeholder."""
    for key in list(event_dict):
        if key.lower() in SENSITIVE_KEYS:
            event_dict[key] = "[redacted]"
    return event_dict


def configure_logging(level: str = "INFO", fmt: str = "console") -> None:
    """Route stdlib and structlog output to stderr as console lines or JSON."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        # plain_traceback: never a formatter that prints local variables (they may hold secrets).
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    structlog.configure(
        # filter_by_level first: a disabled debug line costs a level check, not a formatted event.
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Alembic narrates every plugin it loads at INFO; only its warnings matter at start-up.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structured logger for a module."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger


class BurstLog:
    """One log line per burst of a repeated event (a client's mistake sent many times): the
    first occurrence at once, then at most one line per `window_seconds` counting the rest, so
    a flood of bad requests cannot flood the log."""

    def __init__(
        self,
        logger: structlog.stdlib.BoundLogger,
        event: str,
        window_seconds: float = 10.0,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._event = event
        self._window = window_seconds
        self._now = now
        self._count = 0
        self._next_line_at = float("-inf")

    def record(self, **fields: Any) -> None:
        """Count one occurrence; log it (with how many since the last line) if the window
        has passed."""
        self._count += 1
        at = self._now()
        if at < self._next_line_at:
            return
        self._logger.warning(self._event, occurrences=self._count, **fields)
        self._count = 0
        self._next_line_at = at + self._window
