"""The serving skeleton over a real server: reflection, health, UNIMPLEMENTED and bad input."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from sqlalchemy import text

from tests.support.backends import fresh_database_url
from tests.support.server import RunningServer, make_settings, running_server

OPTIX_SERVICES = {
    "optix.user.v1.UserService",
    "optix.marketdata.v1.MarketDataService",
    "optix.watchlist.v1.WatchlistService",
    "optix.brokerage.v1.BrokerageService",
    "optix.alert.v1.AlertService",
}


async def _list_services(channel: grpc.aio.Channel) -> set[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    async for response in stub.ServerReflectionInfo(iter([request])):
        return {s.name for s in response.list_services_response.service}
    raise AssertionError("no reflection response")


async def _raw_call(channel: grpc.aio.Channel, method: str, payload: bytes) -> grpc.aio.AioRpcError:
    call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
        method, request_serializer=None, response_deserializer=None
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call(payload, timeout=10)
    return info.value


async def test_reflection_lists_every_service_health_and_reflection(server: RunningServer) -> None:
    async with server.channel() as channel:
        names = await _list_services(channel)
    assert names >= OPTIX_SERVICES
    assert "grpc.health.v1.Health" in names
    assert "grpc.reflection.v1alpha.ServerReflection" in names


async def test_health_is_serving_for_each_service(server: RunningServer) -> None:
    async with server.channel() as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for name in [*OPTIX_SERVICES, ""]:
            response = await stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
            assert response.status == health_pb2.HealthCheckResponse.SERVING, name


async def test_schema_is_migrated(server: RunningServer) -> None:
    async with server.deps.database.session() as session:
        versions = (await session.execute(text("SELECT version_num FROM alembic_version"))).all()
    assert versions, "alembic_version is empty: migrations did not run"


async def test_unknown_method_is_unimplemented(server: RunningServer) -> None:
    async with server.channel() as channel:
        error = await _raw_call(channel, "/optix.user.v1.UserService/NoSuchMethod", b"")
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_malformed_request_is_invalid_argument(server: RunningServer) -> None:
    async with server.channel() as channel:
        # 0xff is not a valid protobuf tag: the bytes cannot decode as any message.
        error = await _raw_call(channel, "/optix.user.v1.UserService/Login", b"\xff\xff\xff\xff")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "decoded" in (error.details() or "")


async def test_service_not_hosted_is_unimplemented(tmp_path: Path) -> None:
    async with (
        fresh_database_url("sqlite", tmp_path) as url,
        running_server(make_settings(url, tmp_path, services=["watchlist"])) as running,
        running.channel() as channel,
    ):
        names = await _list_services(channel)
        assert "optix.watchlist.v1.WatchlistService" in names
        assert "optix.alert.v1.AlertService" not in names
        error = await _raw_call(channel, "/optix.alert.v1.AlertService/ListAlerts", b"")
        assert error.code() == grpc.StatusCode.UNIMPLEMENTED
        health = health_pb2_grpc.HealthStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await health.Check(
                health_pb2.HealthCheckRequest(service="optix.alert.v1.AlertService"), timeout=5
            )
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
