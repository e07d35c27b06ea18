"""The token state of one signed-in client and the rule for when to refresh it (no I/O here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum

from optix.user.v1 import user_pb2

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The default clock."""
    return datetime.now(UTC)


class NextStep(Enum):
    """What the token manager must do before the next authenticated call."""

    USE = "use"  # the access token is good
    REFRESH = "refresh"  # redeem the refresh token
    LOGIN = "login"  # sign in with the password credentials
    NONE = "none"  # nothing usable: the call goes out unauthenticated


@dataclass
class Session:
    """Current tokens; `margin` is how long before expiry an access token counts as stale."""

    clock: Clock
    margin: timedelta
    access_token: str | None = None
    access_expire_time: datetime | None = None
    refresh_token: str | None = None
    refresh_expire_time: datetime | None = None
    static: bool = False

    def apply(self, tokens: user_pb2.TokenPair) -> None:
        """Take a new token pair from Login/Register/RefreshToken/CompleteMfaLogin."""
        self.access_token = tokens.access_token
        self.access_expire_time = (
            tokens.access_token_expire_time.ToDatetime(UTC)
            if tokens.HasField("access_token_expire_time")
            else None
        )
        self.refresh_token = tokens.refresh_token or None
        self.refresh_expire_time = (
            tokens.refresh_token_expire_time.ToDatetime(UTC)
            if tokens.HasField("refresh_token_expire_time")
            else None
        )

    def clear(self) -> None:
        """Forget every token (after sign-out or a revoked refresh token)."""
        self.access_token = self.access_expire_time = None
        self.refresh_token = self.refresh_expire_time = None

    def access_is_fresh(self) -> bool:
        """True when the access token exists and is not within `margin` of expiring."""
        if self.access_token is None:
            return False
        if self.static or self.access_expire_time is None:
            return True
        return self.clock() < self.access_expire_time - self.margin

    def refresh_is_usable(self) -> bool:
        """True when a refresh token exists and has not expired."""
        if self.refresh_token is None:
            return False
        return self.refresh_expire_time is None or self.clock() < self.refresh_expire_time

    def next_step(self, can_login: bool) -> NextStep:
        """Decide how to get a usable access token."""
        if self.access_is_fresh():
            return NextStep.USE
        if self.refresh_is_usable():
            return NextStep.REFRESH
        return NextStep.LOGIN if can_login else NextStep.NONE
