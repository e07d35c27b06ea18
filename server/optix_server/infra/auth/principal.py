"""Who is calling: the authenticated principal of the current RPC, reachable via contextvars."""

from __future__ import annotations

import contextlib
import contextvars
import enum
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from optix_server.infra.errors import Unauthenticated


class PrincipalKind(enum.Enum):
    """Whether the caller is a signed-in user or another OPTIX service."""

    USER = "user"
    SERVICE = "service"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a user id (kind USER) or a service name (kind SERVICE)."""

    kind: PrincipalKind
    subject: str
    # The token's jti, for audit logs (never the token itself).
    token_id: str
    # The refresh-token family (sign-in session) a user access token was issued for, if any.
    session_id: str = ""
    # When the token stops being valid (its exp, epoch seconds); 0 when not from a token.
    expires_at: float = 0.0


# A ContextVar is the one sanctioned process-wide object here: each RPC runs in its own task, and
# each task sees only the value set for it, so this is per-request state, not shared state.
_CURRENT: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "optix_principal", default=None
)


def current_principal() -> Principal:
    """The authenticated caller of the RPC being served; Unauthenticated when there is none."""
    principal = _CURRENT.get()
    if principal is None:
        raise Unauthenticated("authentication required", reason="UNAUTHENTICATED")
    return principal


def current_user_id() -> str:
    """The signed-in user's id; Unauthenticated when the caller is not a user."""
    principal = current_principal()
    if principal.kind is not PrincipalKind.USER:
        raise Unauthenticated("this call needs a signed-in user", reason="USER_REQUIRED")
    return principal.subject


def optional_principal() -> Principal | None:
    """The authenticated caller, or None on a public RPC called anonymously."""
    return _CURRENT.get()


@contextmanager
def principal_scope(principal: Principal | None) -> Iterator[None]:
    """Make `principal` the current caller inside the block (used by the interceptor and tests)."""
    token = _CURRENT.set(principal)
    try:
        yield
    finally:
        # A streaming generator may be finalised in another context; the task ends anyway.
        with contextlib.suppress(ValueError):
            _CURRENT.reset(token)
