"""Idempotent creates (AIP-155): a `request_id` remembered per (owner, method) in the same
transaction as the resource it created, so a retry finds the first result and two concurrent
creates with one request id make one resource (the primary key decides, not a prior check)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

from sqlalchemy import String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from optix_server.infra import errors
from optix_server.infra.db import Base, Database, UtcDateTime

T = TypeVar("T")

MAX_REQUEST_ID_LENGTH = 64
_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,64}")


class RequestIdRow(Base):
    """A create that carried a request id, and the id of the resource it made."""

    __tablename__ = "aip_request_ids"

    owner: Mapped[str] = mapped_column(String(64), primary_key=True)
    method: Mapped[str] = mapped_column(String(128), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(MAX_REQUEST_ID_LENGTH), primary_key=True)
    resource_id: Mapped[str] = mapped_column(String(64))
    create_time: Mapped[datetime] = mapped_column(UtcDateTime())


def check_request_id(request_id: str) -> str:
    """`request_id` as given (empty: none); INVALID_ARGUMENT when too long or not printable."""
    if request_id and not _REQUEST_ID.fullmatch(request_id):
        raise errors.InvalidArgument(
            "request_id is not valid",
            [
                errors.FieldViolation(
                    "request_id",
                    f"1 to {MAX_REQUEST_ID_LENGTH} printable ASCII characters (a UUID)",
                )
            ],
        )
    return request_id


def remember(
    session: AsyncSession,
    *,
    owner: str,
    method: str,
    request_id: str,
    resource_id: str,
    now: datetime,
) -> None:
    """Record, in `session`'s transaction, that this request id created `resource_id`; the
    commit fails (IntegrityError) when another create with it got there first."""
    session.add(
        RequestIdRow(
            owner=owner,
            method=method,
            request_id=request_id,
            resource_id=resource_id,
            create_time=now,
        )
    )


async def remembered(
    session: AsyncSession, *, owner: str, method: str, request_id: str
) -> str | None:
    """The id of the resource an earlier create with this request id made, if any."""
    result = await session.execute(
        select(RequestIdRow.resource_id).where(
            RequestIdRow.owner == owner,
            RequestIdRow.method == method,
            RequestIdRow.request_id == request_id,
        )
    )
    return result.scalar_one_or_none()


async def created_by(
    database: Database,
    *,
    owner: str,
    method: str,
    request_id: str,
    fetch: Callable[[str], Awaitable[T | None]],
    what: str,
) -> T:
    """The resource an earlier create with this request id made (read with `fetch`), for a
    retried create; FAILED_PRECONDITION when it has been deleted since."""
    async with database.session() as session:
        created = await remembered(session, owner=owner, method=method, request_id=request_id)
    existing = None if created is None else await fetch(created)
    if existing is None:
        raise errors.FailedPrecondition(
            f"the {what} this request_id created no longer exists; use a new request_id",
            reason="REQUEST_ID_USED",
        )
    return existing
