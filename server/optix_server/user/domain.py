"""Plain values the user service returns (the servicer turns them into protobuf)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from optix_server.user.models import UserRow


@dataclass(frozen=True)
class TokenPair:
    """Access and refresh token with their expiry times."""

    access_token: str
    access_token_expire_time: datetime
    refresh_token: str
    refresh_token_expire_time: datetime


@dataclass(frozen=True)
class MfaChallenge:
    """A second-factor challenge handed to the client instead of tokens."""

    challenge_id: str
    expire_time: datetime


@dataclass(frozen=True)
class NotificationPreferences:
    """How a user wants to hear about alerts."""

    push_enabled: bool
    email_enabled: bool
    webhook_url: str
    # When the default webhook's signing secret was generated (never the secret itself).
    webhook_secret_create_time: datetime | None = None


@dataclass(frozen=True)
class UserProfile:
    """The public view of an account (no secrets)."""

    id: str
    email: str
    display_name: str
    time_zone: str
    notifications: NotificationPreferences
    mfa_enabled: bool
    create_time: datetime
    update_time: datetime

    @property
    def name(self) -> str:
        """The resource name, `users/{id}`."""
        return f"users/{self.id}"

    @classmethod
    def from_row(cls, row: UserRow) -> UserProfile:
        """The profile of a stored account."""
        return cls(
            id=row.id,
            email=row.email,
            display_name=row.display_name,
            time_zone=row.time_zone,
            notifications=NotificationPreferences(
                row.push_enabled,
                row.email_enabled,
                row.webhook_url,
                row.webhook_secret_create_time if row.webhook_url else None,
            ),
            mfa_enabled=row.mfa_enabled,
            create_time=row.create_time,
            update_time=row.update_time,
        )


@dataclass(frozen=True)
class ProfileUpdate:
    """UpdateMe input: the requested field paths and the values they take."""

    paths: tuple[str, ...]
    email: str = ""
    display_name: str = ""
    time_zone: str = ""
    push_enabled: bool = False
    email_enabled: bool = False
    webhook_url: str = ""
    current_password: str = ""
    # Replace the default webhook's signing secret with a new one.
    rotate_webhook_secret: bool = False


@dataclass(frozen=True)
class ProfileUpdated:
    """UpdateMe's result: the profile, and the new webhook signing secret when one was made."""

    profile: UserProfile
    # Plain text, shown once; "" when this update generated none.
    webhook_signing_secret: str = ""


@dataclass(frozen=True)
class UserWebhook:
    """A user's default webhook for internal callers: URL and its secret in clear."""

    url: str
    secret: str
    secret_create_time: datetime | None

    def __repr__(self) -> str:
        # Never the secret, should this value ever reach a log line or a traceback.
        return f"UserWebhook(url=<{len(self.url)} chars>, secret=<hidden>)"


@dataclass(frozen=True)
class SecondFactor:
    """A TOTP code or a recovery code (exactly one is set)."""

    totp_code: str = ""
    recovery_code: str = ""
