"""A session ended by logout stays ended when Redis comes back empty, in a process started
after it, and on another replica that missed the announcement: the ending is a database row
every process mirrors, not a Redis key."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from redis.asyncio import Redis

from optix.user.v1 import user_service_pb2, user_service_pb2_grpc
from optix_server.infra.auth.revocation import MemoryRevocationLog, SessionRevocations
from tests.support.backends import fresh_database_url, redis_namespace
from tests.support.server import make_settings, running_server

PASSWORD = "correct horse battery 42"


def _bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


async def _get_me(address: str, token: str) -> grpc.StatusCode:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = user_service_pb2_grpc.UserServiceStub(channel)
        try:
            await stub.GetMe(user_service_pb2.GetMeRequest(), metadata=_bearer(token))
        except grpc.aio.AioRpcError as error:
            return error.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize("storage", ["sqlite", "postgres"])
async def test_a_logout_survives_redis_restarting_empty_and_a_new_process(
    tmp_path: Path, storage: str
) -> None:
    async with (
        fresh_database_url(storage, tmp_path) as url,
        redis_namespace() as (redis_url, prefix),
    ):
        settings = make_settings(url, tmp_path, redis_url=redis_url, redis_prefix=prefix)
        async with running_server(settings) as server:
            async with grpc.aio.insecure_channel(server.address) as channel:
                stub = user_service_pb2_grpc.UserServiceStub(channel)
                reply = await stub.Register(
                    user_service_pb2.RegisterRequest(email="a@example.com", password=PASSWORD)
                )
                kept = await stub.Login(
                    user_service_pb2.LoginRequest(email="a@example.com", password=PASSWORD)
                )
                await stub.Logout(
                    user_service_pb2.LogoutRequest(refresh_token=reply.tokens.refresh_token),
                    metadata=_bearer(reply.tokens.access_token),
                )
            ended = reply.tokens.access_token
            assert await _get_me(server.address, ended) == grpc.StatusCode.UNAUTHENTICATED
            # Redis restarts empty: every key of this namespace is gone.
            client = Redis.from_url(redis_url)
            try:
                keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
                if keys:
                    await client.delete(*keys)
            finally:
                await client.aclose()
            assert await _get_me(server.address, ended) == grpc.StatusCode.UNAUTHENTICATED
        # A process started afterwards (a rolling restart) knows it too.
        async with running_server(settings) as again:
            assert await _get_me(again.address, ended) == grpc.StatusCode.UNAUTHENTICATED
            assert await _get_me(again.address, kept.tokens.access_token) == grpc.StatusCode.OK


async def test_a_replica_that_missed_the_announcement_learns_the_ending_from_the_record() -> None:
    record = MemoryRevocationLog()  # the database both replicas share
    here = SessionRevocations(record, timedelta(minutes=15))  # no pub/sub: nothing announced
    there = SessionRevocations(record, timedelta(minutes=15))
    await there.refresh()
    await here.revoke("s1")
    assert await here.is_revoked("s1")
    assert not await there.is_revoked("s1")
    await there.refresh()  # what its poll does every couple of seconds
    assert await there.ended_among(["s1", "s2"]) == {"s1"}
