"""Storage of the user slice. Each method is one transaction; races are settled in SQL."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from optix_server.infra.db import Database, new_id
from optix_server.infra.errors import AlreadyExists
from optix_server.user.models import (
    MfaChallengeRow,
    RecoveryCodeRow,
    RefreshFamilyRow,
    RefreshTokenRow,
    UserRow,
)


def _rowcount(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


class RotationOutcome(enum.Enum):
    """What happened to a refresh token presented for rotation."""

    ROTATED = "rotated"
    # Already rotated (or lost a race with a concurrent rotation): a replay.
    REUSED = "reused"
    # Unknown token, or its family is revoked or past its absolute lifetime.
    INVALID = "invalid"


@dataclass(frozen=True)
class Rotation:
    """The result of rotate_refresh_token."""

    outcome: RotationOutcome
    user_id: str = ""
    family_id: str = ""
    family_expire_time: datetime | None = None


@dataclass(frozen=True)
class Challenge:
    """A stored MFA challenge as the service needs it."""

    id: str
    user_id: str
    expire_time: datetime
    used: bool
    failed_attempts: int


@dataclass(frozen=True)
class NewFamily:
    """A sign-in session to store: its first refresh token's hash and its lifetime."""

    token_hash: str
    create_time: datetime
    expire_time: datetime


async def _add_family(session: AsyncSession, user_id: str, family: NewFamily) -> str:
    family_id = new_id()
    session.add(
        RefreshFamilyRow(
            id=family_id,
            user_id=user_id,
            create_time=family.create_time,
            expire_time=family.expire_time,
        )
    )
    await session.flush()
    session.add(
        RefreshTokenRow(
            id=new_id(),
            family_id=family_id,
            token_hash=family.token_hash,
            create_time=family.create_time,
        )
    )
    return family_id


class UserRepository:
    """Reads and writes users, token families, MFA challenges and recovery codes."""

    def __init__(self, database: Database) -> None:
        self._db = database

    # --- accounts -------------------------------------------------------------------------

    async def create_user(self, row: UserRow, first_session: NewFamily) -> str:
        """Insert a new account and its first sign-in session in one transaction (an account is
        never left without the session its Register promised); AlreadyExists when the email is
        taken. Returns the session's family id."""
        async with self._db.session() as session:
            session.add(row)
            try:
                await session.flush()
            except IntegrityError:
                raise AlreadyExists(
                    "an account with this email already exists", reason="EMAIL_TAKEN"
                ) from None
            return await _add_family(session, row.id, first_session)

    async def get_user(self, user_id: str) -> UserRow | None:
        """The account with this id."""
        async with self._db.session() as session:
            return await session.get(UserRow, user_id)

    async def find_by_email_key(self, email_key: str) -> UserRow | None:
        """The account signing in with this (casefolded) email."""
        async with self._db.session() as session:
            result = await session.execute(select(UserRow).where(UserRow.email_key == email_key))
            return result.scalar_one_or_none()

    async def update_user(
        self,
        user_id: str,
        values: Mapping[str, Any],
        *,
        expect: Mapping[str, Any] | None = None,
    ) -> UserRow | None:
        """Set columns of one account; AlreadyExists when a new email is taken. With `expect`
        (column -> value), only while those columns still hold those values: None when the
        account is gone or they changed (a conditional UPDATE, so concurrent writers cannot
        both succeed)."""
        conditions = [UserRow.id == user_id]
        for column, value in (expect or {}).items():
            attribute = getattr(UserRow, column)
            conditions.append(attribute.is_(None) if value is None else attribute == value)
        try:
            async with self._db.session() as session:
                result = await session.execute(update(UserRow).where(*conditions).values(**values))
                if expect is not None and _rowcount(result) != 1:
                    return None
                return await session.get(UserRow, user_id, populate_existing=True)
        except IntegrityError:
            raise AlreadyExists(
                "an account with this email already exists", reason="EMAIL_TAKEN"
            ) from None

    # --- refresh-token families ------------------------------------------------------------

    async def start_family(self, user_id: str, family: NewFamily) -> str:
        """Create a sign-in session with its first refresh token; returns the family id."""
        async with self._db.session() as session:
            return await _add_family(session, user_id, family)

    async def rotate_refresh_token(self, token_hash: str, new_hash: str, now: datetime) -> Rotation:
        """Retire the token and issue its successor in the same family, at most once."""
        async with self._db.session() as session:
            found = (
                await session.execute(
                    select(RefreshTokenRow, RefreshFamilyRow)
                    .join(RefreshFamilyRow, RefreshFamilyRow.id == RefreshTokenRow.family_id)
                    .where(RefreshTokenRow.token_hash == token_hash)
                )
            ).one_or_none()
            if found is None:
                return Rotation(RotationOutcome.INVALID)
            token, family = found
            if family.revoke_time is not None or family.expire_time <= now:
                return Rotation(RotationOutcome.INVALID, family.user_id, family.id)
            reused = Rotation(RotationOutcome.REUSED, family.user_id, family.id)
            if token.use_time is not None:
                return reused
            # The conditional UPDATE is the lock: of two concurrent rotations only one matches
            # `use_time IS NULL`; the other sees rowcount 0 and is treated as a replay.
            claimed = await session.execute(
                update(RefreshTokenRow)
                .where(RefreshTokenRow.id == token.id, RefreshTokenRow.use_time.is_(None))
                .values(use_time=now)
            )
            if _rowcount(claimed) != 1:
                return reused
            session.add(
                RefreshTokenRow(
                    id=new_id(), family_id=family.id, token_hash=new_hash, create_time=now
                )
            )
            return Rotation(RotationOutcome.ROTATED, family.user_id, family.id, family.expire_time)

    async def revoke_family(self, family_id: str, now: datetime, reason: str) -> None:
        """End a sign-in session: none of its refresh tokens work any more."""
        async with self._db.session() as session:
            await session.execute(
                update(RefreshFamilyRow)
                .where(RefreshFamilyRow.id == family_id, RefreshFamilyRow.revoke_time.is_(None))
                .values(revoke_time=now, revoke_reason=reason)
            )

    async def family_of_token(self, token_hash: str) -> tuple[str, str] | None:
        """(family id, user id) of a stored refresh token, used or not."""
        async with self._db.session() as session:
            found = (
                await session.execute(
                    select(RefreshFamilyRow.id, RefreshFamilyRow.user_id)
                    .join(RefreshTokenRow, RefreshFamilyRow.id == RefreshTokenRow.family_id)
                    .where(RefreshTokenRow.token_hash == token_hash)
                )
            ).one_or_none()
            return None if found is None else (found[0], found[1])

    async def revoke_user_families(self, user_id: str, now: datetime, reason: str) -> list[str]:
        """End every live sign-in session of a user (password change); returns their ids."""
        async with self._db.session() as session:
            live = (
                await session.execute(
                    select(RefreshFamilyRow.id).where(
                        RefreshFamilyRow.user_id == user_id,
                        RefreshFamilyRow.revoke_time.is_(None),
                        RefreshFamilyRow.expire_time > now,
                    )
                )
            ).scalars()
            ids = list(live)
            await session.execute(
                update(RefreshFamilyRow)
                .where(RefreshFamilyRow.user_id == user_id, RefreshFamilyRow.revoke_time.is_(None))
                .values(revoke_time=now, revoke_reason=reason)
            )
            return ids

    # --- MFA -------------------------------------------------------------------------------

    async def consume_totp_step(self, user_id: str, step: int) -> bool:
        """Record `step` as used; False when it (or a later step) was used already."""
        async with self._db.session() as session:
            result = await session.execute(
                update(UserRow)
                .where(
                    UserRow.id == user_id,
                    (UserRow.mfa_last_step.is_(None)) | (UserRow.mfa_last_step < step),
                )
                .values(mfa_last_step=step)
            )
            return _rowcount(result) == 1

    async def enable_mfa(
        self,
        user_id: str,
        pending_secret: str,
        step: int,
        code_hashes: Sequence[str],
        now: datetime,
    ) -> bool:
        """Promote the pending secret, record the confirming step, replace recovery codes."""
        async with self._db.session() as session:
            result = await session.execute(
                update(UserRow)
                .where(
                    UserRow.id == user_id,
                    UserRow.mfa_enabled.is_(False),
                    UserRow.mfa_pending_secret == pending_secret,
                    (UserRow.mfa_last_step.is_(None)) | (UserRow.mfa_last_step < step),
                )
                .values(
                    mfa_enabled=True,
                    mfa_secret=pending_secret,
                    mfa_pending_secret=None,
                    mfa_last_step=step,
                    update_time=now,
                )
            )
            if _rowcount(result) != 1:
                return False
            await session.execute(delete(RecoveryCodeRow).where(RecoveryCodeRow.user_id == user_id))
            session.add_all(
                RecoveryCodeRow(id=new_id(), user_id=user_id, code_hash=code_hash)
                for code_hash in code_hashes
            )
            return True

    async def disable_mfa(self, user_id: str, now: datetime) -> None:
        """Turn MFA off and forget its secret and recovery codes."""
        async with self._db.session() as session:
            await session.execute(
                update(UserRow)
                .where(UserRow.id == user_id)
                .values(
                    mfa_enabled=False,
                    mfa_secret=None,
                    mfa_pending_secret=None,
                    update_time=now,
                )
            )
            await session.execute(delete(RecoveryCodeRow).where(RecoveryCodeRow.user_id == user_id))

    async def consume_recovery_code(self, user_id: str, code_hash: str, now: datetime) -> bool:
        """Use a recovery code once; False when unknown or used."""
        async with self._db.session() as session:
            result = await session.execute(
                update(RecoveryCodeRow)
                .where(
                    RecoveryCodeRow.user_id == user_id,
                    RecoveryCodeRow.code_hash == code_hash,
                    RecoveryCodeRow.use_time.is_(None),
                )
                .values(use_time=now)
            )
            return _rowcount(result) == 1

    # --- MFA challenges --------------------------------------------------------------------

    async def create_challenge(
        self, challenge_hash: str, user_id: str, now: datetime, expire_time: datetime
    ) -> None:
        """Store a new MFA challenge (by hash only)."""
        async with self._db.session() as session:
            session.add(
                MfaChallengeRow(
                    id=new_id(),
                    challenge_hash=challenge_hash,
                    user_id=user_id,
                    create_time=now,
                    expire_time=expire_time,
                    failed_attempts=0,
                )
            )

    async def get_challenge(self, challenge_hash: str) -> Challenge | None:
        """The challenge with this hash."""
        async with self._db.session() as session:
            row = (
                await session.execute(
                    select(MfaChallengeRow).where(MfaChallengeRow.challenge_hash == challenge_hash)
                )
            ).scalar_one_or_none()
            if row is None:
                return None
            return Challenge(
                row.id, row.user_id, row.expire_time, row.use_time is not None, row.failed_attempts
            )

    async def fail_challenge(self, challenge_id: str, max_attempts: int, now: datetime) -> None:
        """Count a wrong code; the challenge dies at `max_attempts`."""
        async with self._db.session() as session:
            await session.execute(
                update(MfaChallengeRow)
                .where(MfaChallengeRow.id == challenge_id)
                .values(failed_attempts=MfaChallengeRow.failed_attempts + 1)
            )
            await session.execute(
                update(MfaChallengeRow)
                .where(
                    MfaChallengeRow.id == challenge_id,
                    MfaChallengeRow.failed_attempts >= max_attempts,
                    MfaChallengeRow.use_time.is_(None),
                )
                .values(use_time=now)
            )

    async def consume_challenge(self, challenge_id: str, now: datetime) -> bool:
        """Redeem a challenge once; False when it was redeemed (or killed) already."""
        async with self._db.session() as session:
            result = await session.execute(
                update(MfaChallengeRow)
                .where(MfaChallengeRow.id == challenge_id, MfaChallengeRow.use_time.is_(None))
                .values(use_time=now)
            )
            return _rowcount(result) == 1

    async def end_challenges(self, user_id: str, now: datetime) -> None:
        """Make every pending MFA challenge of a user unusable (its password changed)."""
        async with self._db.session() as session:
            await session.execute(
                update(MfaChallengeRow)
                .where(MfaChallengeRow.user_id == user_id, MfaChallengeRow.use_time.is_(None))
                .values(use_time=now)
            )

    # --- housekeeping ----------------------------------------------------------------------

    async def purge_expired(self, cutoff: datetime) -> None:
        """Delete challenges and sign-in sessions that expired or were revoked before `cutoff`."""
        async with self._db.session() as session:
            await session.execute(
                delete(MfaChallengeRow).where(MfaChallengeRow.expire_time < cutoff)
            )
            dead = select(RefreshFamilyRow.id).where(
                (RefreshFamilyRow.expire_time < cutoff) | (RefreshFamilyRow.revoke_time < cutoff)
            )
            await session.execute(
                delete(RefreshTokenRow).where(RefreshTokenRow.family_id.in_(dead))
            )
            await session.execute(
                delete(RefreshFamilyRow).where(
                    (RefreshFamilyRow.expire_time < cutoff)
                    | (RefreshFamilyRow.revoke_time < cutoff)
                )
            )
