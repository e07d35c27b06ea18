"""Housekeeping and the Redis-backed limiter, through the running service."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from optix.user.v1 import user_service_pb2
from optix_server.user.maintenance import Janitor
from optix_server.user.models import RefreshFamilyRow, RefreshTokenRow, UserRow
from optix_server.user.repository import NewFamily, UserRepository
from tests.support.backends import fresh_database_url
from tests.support.errors import expect_error
from tests.user.harness import UserHarness, bearer, user_server


async def _count(users: UserHarness, model: type[RefreshFamilyRow] | type[RefreshTokenRow]) -> int:
    async with users.deps.database.session() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def test_janitor_deletes_only_dead_sessions(users: UserHarness) -> None:
    ended = (await users.register()).tokens
    await users.stub.Logout(
        user_service_pb2.LogoutRequest(refresh_token=ended.refresh_token),
        metadata=bearer(ended.access_token),
    )
    users.clock.advance(timedelta(days=2))
    alive = (await users.login()).tokens
    janitor = Janitor(UserRepository(users.deps.database), users.clock, users.deps.lifecycle)
    await janitor.purge_once()
    assert await _count(users, RefreshFamilyRow) == 1
    assert await _count(users, RefreshTokenRow) == 1
    await users.stub.RefreshToken(
        user_service_pb2.RefreshTokenRequest(refresh_token=alive.refresh_token)
    )


async def test_lockout_shared_through_redis(tmp_path: Path, redis_ns: tuple[str, str]) -> None:
    async with (
        fresh_database_url("sqlite", tmp_path) as url,
        user_server(url, tmp_path, redis=redis_ns) as users,
    ):
        await users.register()
        for _ in range(5):
            await expect_error(
                grpc.StatusCode.UNAUTHENTICATED, users.login(password="wrong!wrong!")
            )
        await expect_error(grpc.StatusCode.RESOURCE_EXHAUSTED, users.login())
        users.clock.advance(timedelta(minutes=15))
        assert (await users.login()).HasField("tokens")


async def test_secrets_are_not_stored_in_clear(users: UserHarness) -> None:
    registered = await users.register()
    totp_secret, codes = await users.enable_mfa(registered.tokens.access_token)
    dump = ""
    async with users.deps.database.session() as session:
        for table in ("user_users", "user_refresh_tokens", "user_recovery_codes"):
            rows = (await session.execute(text(f"SELECT * FROM {table}"))).all()
            dump += repr(rows)
    for secret in (
        totp_secret,
        registered.tokens.refresh_token,
        "correct horse battery staple",
        *codes,
    ):
        assert secret not in dump


async def test_an_account_is_stored_with_its_first_session_or_not_at_all(
    users: UserHarness,
) -> None:
    first = await users.register()
    repository = UserRepository(users.deps.database)
    async with users.deps.database.session() as session:
        taken = (await session.execute(select(RefreshTokenRow.token_hash))).scalar_one()
    row = UserRow(
        id="a" * 32,
        email="bob@example.com",
        email_key="bob@example.com",
        password_hash="x",
        display_name="",
        time_zone="UTC",
        push_enabled=True,
        email_enabled=False,
        webhook_url="",
        mfa_enabled=False,
        create_time=users.clock.now(),
        update_time=users.clock.now(),
    )
    # The session's write fails (its token hash collides): the account is not kept either.
    collision = NewFamily(taken, users.clock.now(), users.clock.now() + timedelta(days=1))
    with pytest.raises(IntegrityError):
        await repository.create_user(row, collision)
    async with users.deps.database.session() as session:
        emails = (await session.execute(select(UserRow.email))).scalars().all()
    assert emails == [first.user.email]
    # And the same account with a fresh session is stored whole.
    fresh = NewFamily("f" * 64, users.clock.now(), users.clock.now() + timedelta(days=1))
    family_id = await repository.create_user(row, fresh)
    async with users.deps.database.session() as session:
        owner = await session.scalar(
            select(RefreshFamilyRow.user_id).where(RefreshFamilyRow.id == family_id)
        )
    assert owner == row.id
