"""The domain error vocabulary. Domain code raises these; only grpc_errors.py maps them to gRPC."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta


@dataclass(frozen=True)
class FieldViolation:
    """One invalid field of a request: its path (e.g. `user.email`) and what is wrong with it."""

    field: str
    description: str


class OptixError(Exception):
    """Base of every error the domain raises on purpose; `message` is safe to show a client."""

    def __init__(
        self,
        message: str,
        *,
        reason: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        # A stable, machine-readable UPPER_SNAKE reason for google.rpc.ErrorInfo.
        self.reason = reason
        self.metadata: dict[str, str] = dict(metadata or {})


class InvalidArgument(OptixError):
    """The request is malformed; `violations` names each bad field."""

    def __init__(self, message: str, violations: Sequence[FieldViolation] = ()) -> None:
        super().__init__(message, reason="INVALID_ARGUMENT")
        self.violations = list(violations)


class NotFound(OptixError):
    """The resource does not exist, or belongs to someone else (never reveal which)."""

    def __init__(self, message: str, *, resource_type: str = "", resource_name: str = "") -> None:
        super().__init__(message, reason="NOT_FOUND")
        self.resource_type = resource_type
        self.resource_name = resource_name


class AlreadyExists(OptixError):
    """A resource with the same identity exists already."""


class Unauthenticated(OptixError):
    """No valid credentials were presented."""


class PermissionDenied(OptixError):
    """The caller is known but may not do this (not for other users' resources: use NotFound)."""


class FailedPrecondition(OptixError):
    """The system is not in a state that allows the operation (e.g. MFA not set up)."""


class Aborted(OptixError):
    """A concurrency conflict, such as a stale etag; the client should re-read and retry."""


class DeadlineExceeded(OptixError):
    """The call ran out of time, for example its request message never arrived."""


class ResourceExhausted(OptixError):
    """A rate or quota limit was hit; retry after `retry_after` when given."""

    def __init__(
        self, message: str, *, retry_after: timedelta | None = None, reason: str = ""
    ) -> None:
        super().__init__(message, reason=reason or "RESOURCE_EXHAUSTED")
        self.retry_after = retry_after


class Unavailable(OptixError):
    """A dependency is temporarily unavailable; the call is safe to retry."""

    def __init__(
        self, message: str, *, retry_after: timedelta | None = None, reason: str = ""
    ) -> None:
        super().__init__(message, reason=reason or "UNAVAILABLE")
        self.retry_after = retry_after


class Unimplemented(OptixError):
    """The operation exists in the contract but is not implemented yet."""


@dataclass
class ViolationCollector:
    """Collects field violations while validating a request, then raises them all at once."""

    violations: list[FieldViolation] = field(default_factory=list)

    def add(self, field_path: str, description: str) -> None:
        """Record that `field_path` is invalid."""
        self.violations.append(FieldViolation(field_path, description))

    def raise_if_any(self, message: str = "the request has invalid fields") -> None:
        """Raise InvalidArgument with every collected violation, if there are any."""
        if self.violations:
            raise InvalidArgument(message, self.violations)
