"""The auth interceptor in front of any service: unary and streaming handlers see the caller
through current_principal(), and internal calls authenticate with a service identity."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2

from optix_server.infra.auth.config import AuthSettings
from optix_server.infra.auth.interceptor import AuthInterceptor
from optix_server.infra.auth.keys import load_keyring
from optix_server.infra.auth.principal import current_principal, current_user_id
from optix_server.infra.auth.revocation import MemoryRevocationLog, SessionRevocations
from optix_server.infra.auth.service_identity import (
    ServiceTokenSource,
    service_channel_interceptors,
)
from optix_server.infra.auth.session_watch import SessionWatch
from optix_server.infra.auth.tokens import TokenAuthority
from optix_server.infra.interceptors import ErrorMappingInterceptor
from optix_server.infra.pubsub import InMemoryPubSub
from tests.support.errors import detail
from tests.user.harness import ManualClock, bearer


def _who(principal_text: str) -> bytes:
    return principal_text.encode()


async def _unary(request: bytes, context: Any) -> bytes:
    principal = current_principal()
    return _who(f"{principal.kind.value}:{principal.subject}")


async def _stream(request: bytes, context: Any) -> AsyncIterator[bytes]:
    for _ in range(3):
        yield _who(f"user:{current_user_id()}")


async def _public(request: bytes, context: Any) -> bytes:
    return b"public"


@pytest.fixture
def authority(tmp_path: Path) -> TokenAuthority:
    clock = ManualClock()
    return TokenAuthority(load_keyring(AuthSettings(), clock, tmp_path), AuthSettings(), clock)


@pytest.fixture
async def address(authority: TokenAuthority) -> AsyncIterator[str]:
    handlers = grpc.method_handlers_generic_handler(
        "test.Who",
        {
            "Unary": grpc.unary_unary_rpc_method_handler(_unary),
            "Stream": grpc.unary_stream_rpc_method_handler(_stream),
            "Public": grpc.unary_unary_rpc_method_handler(_public),
        },
    )
    server = grpc.aio.server(
        interceptors=[
            ErrorMappingInterceptor(),
            AuthInterceptor(authority, public_methods=frozenset({"/test.Who/Public"})),
        ]
    )
    server.add_generic_rpc_handlers([handlers])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


def _calls(channel: grpc.aio.Channel) -> Iterator[Any]:
    yield channel.unary_unary("/test.Who/Unary")
    yield channel.unary_stream("/test.Who/Stream")


async def test_user_principal_reaches_unary_and_streaming_handlers(
    address: str, authority: TokenAuthority
) -> None:
    token = authority.issue_access_token("u42", session_id="s", ttl=timedelta(minutes=5)).token
    async with grpc.aio.insecure_channel(address) as channel:
        unary, stream = _calls(channel)
        assert await unary(b"", metadata=bearer(token)) == b"user:u42"
        replies = [r async for r in stream(b"", metadata=bearer(token))]
        assert replies == [b"user:u42"] * 3


async def test_everything_but_the_public_list_needs_a_token(address: str) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        unary, stream = _calls(channel)
        for call in (unary(b""), stream(b"").read()):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await call
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        public: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            "/test.Who/Public"
        )
        assert await public(b"") == b"public"


async def test_service_identity_on_an_internal_channel(
    address: str, authority: TokenAuthority
) -> None:
    source = ServiceTokenSource(authority, "alert", ManualClock())
    async with grpc.aio.insecure_channel(
        address, interceptors=service_channel_interceptors(source)
    ) as channel:
        unary, stream = _calls(channel)
        assert await unary(b"") == b"service:alert"
        # A service is not a user: user-only handlers refuse it.
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stream(b"").read()
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


class _EndsAfterFirstLook(SessionRevocations):
    """A deny-list on which a session appears right after the check made before the handler,
    its announcement having reached no stream watcher yet."""

    def __init__(self) -> None:
        super().__init__(MemoryRevocationLog(), timedelta(minutes=15))
        self.looks = 0

    async def is_revoked(self, session_id: str) -> bool:
        """Not ended at the first look, ended from the second on."""
        self.looks += 1
        return self.looks > 1


async def _endless(request: bytes, context: Any) -> None:
    await context.write(b"first")
    await asyncio.Event().wait()


async def test_a_session_ended_just_before_its_stream_was_armed_ends_the_stream(
    authority: TokenAuthority,
) -> None:
    pubsub = InMemoryPubSub()
    watch = SessionWatch(pubsub)
    await watch.start()
    store = _EndsAfterFirstLook()
    server = grpc.aio.server(
        interceptors=[
            ErrorMappingInterceptor(),
            AuthInterceptor(
                authority,
                public_methods=frozenset(),
                revocations=store,
                session_watch=watch,
            ),
        ]
    )
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "test.Who", {"Endless": grpc.unary_stream_rpc_method_handler(_endless)}
            )
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    token = authority.issue_access_token("u42", session_id="s", ttl=timedelta(minutes=5)).token
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            endless: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(
                "/test.Who/Endless"
            )
            call = endless(b"", metadata=bearer(token))
            # The guard only turns "streams on" into a failure instead of a hang.
            with pytest.raises(grpc.aio.AioRpcError) as info:
                async with asyncio.timeout(10):
                    await call.read()
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        reason = detail(info.value, error_details_pb2.ErrorInfo)
        assert reason is not None and reason.reason == "SESSION_ENDED"
        assert store.looks == 2
    finally:
        await server.stop(0)
        await watch.stop()
