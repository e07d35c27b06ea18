"""What can go wrong talking to a brokerage provider, as domain errors (each maps to a gRPC code
through infra.grpc_errors). Messages are safe to show: they never carry tokens, codes or
provider bodies."""

from __future__ import annotations

from datetime import timedelta

from optix_server.infra.errors import FailedPrecondition, OptixError, Unavailable


class BrokerError(OptixError):
    """Base of every provider failure; catch this to handle "the broker said no" as a whole."""


class ProviderUnavailable(Unavailable, BrokerError):
    """The provider could not be reached or answered nonsense (5xx, timeout, malformed JSON, an
    HTML error page). Retryable: the same call may succeed later."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: timedelta | None = None,
        reason: str = "PROVIDER_UNAVAILABLE",
    ) -> None:
        super().__init__(message, retry_after=retry_after, reason=reason)


class RateLimited(ProviderUnavailable):
    """The provider kept answering 429; retry after `retry_after` (its Retry-After, if sent)."""

    def __init__(self, message: str, *, retry_after: timedelta | None = None) -> None:
        super().__init__(message, retry_after=retry_after, reason="PROVIDER_RATE_LIMITED")


class AuthorizationError(FailedPrecondition, BrokerError):
    """The provider refused the connection's credentials."""


class AccessTokenExpired(AuthorizationError):
    """A data call got 401: refresh the access token (`BrokerConnector.refresh`) and retry once.
    If the refresh fails too, that raises ReauthorizationRequired."""

    def __init__(self, message: str = "the provider rejected the access token") -> None:
        super().__init__(message, reason="ACCESS_TOKEN_EXPIRED")


class ReauthorizationRequired(AuthorizationError):
    """The refresh token is dead (expired, revoked, or refused with 401): the user must sign in at
    the broker again (CONNECTION_STATUS_REAUTH_REQUIRED)."""

    def __init__(
        self,
        message: str = "the authorisation expired; sign in at the broker again",
        *,
        reason: str = "REAUTH_REQUIRED",
    ) -> None:
        super().__init__(message, reason=reason)


class AuthorizationRevoked(ReauthorizationRequired):
    """The provider refused a refresh token before its known end: access was withdrawn at the
    broker (CONNECTION_STATUS_REVOKED); signing in again restores it."""

    def __init__(
        self, message: str = "access was withdrawn at the broker; sign in again or delete"
    ) -> None:
        super().__init__(message, reason="AUTHORIZATION_REVOKED")


class ProviderRejected(FailedPrecondition, BrokerError):
    """The provider refused the request itself (4xx other than 401/429): a bad or used
    authorization code, an unknown account, a request outside the provider's rules. Not
    retryable as is."""

    def __init__(self, message: str, *, reason: str = "PROVIDER_REJECTED") -> None:
        super().__init__(message, reason=reason)
