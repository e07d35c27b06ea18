"""Internal callers through Envoy with the Python SDK; per-service upstreams; rate limiting."""

from __future__ import annotations

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2

from optix.marketdata.v1 import marketdata_service_pb2
from optix.user.v1 import user_service_pb2
from optix_client import ClientOptions, OptixClient, OptixError, RetryPolicy
from tests.e2e.accounts import PASSWORD, new_email
from tests.e2e.grpcweb import call, frame
from tests.e2e.stack import Edge

SERVICE_NAMES = (
    "optix.user.v1.UserService",
    "optix.marketdata.v1.MarketDataService",
    "optix.watchlist.v1.WatchlistService",
    "optix.brokerage.v1.BrokerageService",
    "optix.alert.v1.AlertService",
)
GET_JWKS = "/optix.user.v1.UserService/GetJwks"
NO_RETRY = ClientOptions(retry=RetryPolicy(max_attempts=2, initial_backoff_s=0.01))


async def test_sdk_through_envoy_signs_in_calls_and_streams(edge: Edge) -> None:
    async with OptixClient(edge.address) as client:
        email = new_email("sdk")
        await client.register(email, PASSWORD)
        me = await client.user.GetMe(user_service_pb2.GetMeRequest())
        assert me.user.email == email
        quote = await client.marketdata.GetQuote(
            marketdata_service_pb2.GetQuoteRequest(symbol="MSFT")
        )
        assert quote.quote.symbol == "MSFT"
        request = marketdata_service_pb2.StreamQuotesRequest(symbols=["MSFT"])
        stream = client.marketdata.StreamQuotes(request)
        received = 0
        async for _ in stream:
            received += 1
            if received == 2:
                stream.cancel()
                break
        assert received == 2
        with pytest.raises(OptixError) as bad:
            await client.marketdata.GetQuote(marketdata_service_pb2.GetQuoteRequest(symbol="!!"))
        assert bad.value.code is grpc.StatusCode.INVALID_ARGUMENT
        assert bad.value.field_violations  # google.rpc details survive the proxy


async def test_health_of_every_service_through_envoy(edge: Edge) -> None:
    async with OptixClient(edge.address) as client:
        for name in ("", *SERVICE_NAMES):
            reply = await client.health.Check(health_pb2.HealthCheckRequest(service=name))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, name


async def test_unknown_method_through_envoy_is_unimplemented(edge: Edge) -> None:
    channel = grpc.aio.insecure_channel(edge.address)
    try:
        method: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            "/optix.nope.v1.Nope/Do"
        )
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await method(b"", timeout=10)
        assert failure.value.code() is grpc.StatusCode.UNIMPLEMENTED
    finally:
        await channel.close()


async def test_internal_methods_are_refused_at_the_edge(edge: Edge) -> None:
    # GetUserWebhook carries secrets service to service: the edge answers it itself, for
    # native gRPC and grpc-web alike (the server would say UNAUTHENTICATED to a token-less call).
    path = "/optix.user.v1.UserService/GetUserWebhook"
    request = user_service_pb2.GetUserWebhookRequest(name="users/x").SerializeToString()
    channel = grpc.aio.insecure_channel(edge.address)
    try:
        method: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(path)
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await method(request, timeout=10)
        assert failure.value.code() is grpc.StatusCode.PERMISSION_DENIED
        assert "internal" in (failure.value.details() or "")
    finally:
        await channel.close()
    with httpx.Client(base_url=edge.url, timeout=10.0) as http:
        reply = call(http, path, frame(request))
    assert reply.grpc_status == 7 and "internal" in reply.grpc_message


async def test_oversized_message_through_envoy_is_refused(edge: Edge) -> None:
    async with OptixClient(edge.address, options=NO_RETRY) as client:
        with pytest.raises(OptixError) as refused:
            await client.marketdata.GetQuote(
                marketdata_service_pb2.GetQuoteRequest(symbol="A" * (5 * 1024 * 1024))
            )
    assert refused.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED


# Port 1 on loopback: nothing listens there, so marketdata calls cannot connect.
@pytest.mark.edge_env(OPTIX_ENVOY_UPSTREAM_MARKETDATA="127.0.0.1:1")
async def test_each_service_has_its_own_upstream(custom_edge: Edge) -> None:
    async with OptixClient(custom_edge.address, options=NO_RETRY) as client:
        jwks = await client.user.GetJwks(user_service_pb2.GetJwksRequest())
        assert jwks.keys  # user -> the live server
        with pytest.raises(OptixError) as down:
            await client.marketdata.GetQuote(marketdata_service_pb2.GetQuoteRequest(symbol="AAPL"))
    assert down.value.code is grpc.StatusCode.UNAVAILABLE  # marketdata -> nothing listening


# Two replicas, one of them dead: every call reaches the live one (health checks take the dead
# one out of the rotation; a call that still picks it is retried on the other).
@pytest.mark.edge_env(OPTIX_ENVOY_UPSTREAM_USER="127.0.0.1:1,{backend}")
async def test_an_upstream_of_several_replicas_routes_around_a_dead_one(custom_edge: Edge) -> None:
    async with OptixClient(custom_edge.address, options=NO_RETRY) as client:
        for _ in range(20):
            jwks = await client.user.GetJwks(user_service_pb2.GetJwksRequest())
            assert jwks.keys


@pytest.mark.edge_env(
    OPTIX_ENVOY_RATE_LIMIT_BURST="3",
    OPTIX_ENVOY_RATE_LIMIT_RPS="1",
    OPTIX_ENVOY_RATE_LIMIT_INTERVAL_S="3600",
)
async def test_local_rate_limit_answers_resource_exhausted(custom_edge: Edge) -> None:
    # envoy() already spent one token on its readiness health check.
    async with OptixClient(custom_edge.address, options=NO_RETRY) as client:
        for _ in range(2):
            await client.user.GetJwks(user_service_pb2.GetJwksRequest())
        with pytest.raises(OptixError) as limited:
            await client.user.GetJwks(user_service_pb2.GetJwksRequest())
    assert limited.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.mark.edge_env(
    OPTIX_ENVOY_CLIENT_RATE_LIMIT_BURST="3",
    OPTIX_ENVOY_CLIENT_RATE_LIMIT_RPS="1",
)
def test_each_client_address_has_its_own_rate_limit(custom_edge: Edge) -> None:
    # One address spending its budget leaves another address's untouched.
    def statuses(source: str, calls: int) -> list[int | None]:
        transport = httpx.HTTPTransport(local_address=source)
        with httpx.Client(base_url=custom_edge.url, transport=transport, timeout=10) as client:
            return [call(client, GET_JWKS, frame(b"")).grpc_status for _ in range(calls)]

    greedy = statuses("127.0.0.5", 6)
    assert greedy[:3] == [0, 0, 0] and 8 in greedy[3:], greedy  # RESOURCE_EXHAUSTED
    assert statuses("127.0.0.6", 2) == [0, 0]
