"""Tables of the user slice: accounts, refresh-token families, MFA challenges, recovery codes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from optix_server.infra.db import Base, UtcDateTime


class UserRow(Base):
    """An account. Secrets are stored only as hashes or encrypted."""

    __tablename__ = "user_users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # As entered (trimmed, domain lowercased); shown back to the user.
    email: Mapped[str] = mapped_column(String(254))
    # Casefolded email: the identity for sign-in and uniqueness.
    email_key: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(128))
    display_name: Mapped[str] = mapped_column(String(100), default="")
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    push_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    email_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    webhook_url: Mapped[str] = mapped_column(String(2048), default="")
    # The default webhook's signing secret, AES-GCM sealed like the TOTP secrets (own subkey);
    # None while there is no webhook URL.
    webhook_signing_secret: Mapped[str | None] = mapped_column(Text, nullable=True)
    webhook_secret_create_time: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    mfa_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # TOTP secrets, AES-GCM encrypted under a key derived from the server pepper.
    mfa_secret: Mapped[str | None] = mapped_column(Text, nullable=True)
    mfa_pending_secret: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The last TOTP time step accepted: a code for this step or an earlier one is refused.
    mfa_last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    create_time: Mapped[datetime] = mapped_column(UtcDateTime)
    update_time: Mapped[datetime] = mapped_column(UtcDateTime)


class RefreshFamilyRow(Base):
    """A sign-in session: every refresh token rotated from one sign-in shares this family."""

    __tablename__ = "user_refresh_families"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("user_users.id", ondelete="CASCADE"), index=True
    )
    create_time: Mapped[datetime] = mapped_column(UtcDateTime)
    # Absolute lifetime: rotation never extends it.
    expire_time: Mapped[datetime] = mapped_column(UtcDateTime)
    revoke_time: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    revoke_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)


class RefreshTokenRow(Base):
    """One refresh token of a family, stored as a SHA-256 hash; `use_time` set once rotated."""

    __tablename__ = "user_refresh_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    family_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("user_refresh_families.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    create_time: Mapped[datetime] = mapped_column(UtcDateTime)
    use_time: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class MfaChallengeRow(Base):
    """A pending second-factor step of a sign-in; single use, short-lived, limited attempts."""

    __tablename__ = "user_mfa_challenges"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    challenge_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("user_users.id", ondelete="CASCADE"), index=True
    )
    create_time: Mapped[datetime] = mapped_column(UtcDateTime)
    expire_time: Mapped[datetime] = mapped_column(UtcDateTime)
    use_time: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)


class RecoveryCodeRow(Base):
    """A one-time MFA recovery code, stored as a keyed hash."""

    __tablename__ = "user_recovery_codes"
    __table_args__ = (UniqueConstraint("user_id", "code_hash"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("user_users.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[str] = mapped_column(String(64))
    use_time: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
