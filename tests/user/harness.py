"""Test harness for the user service: a real server on port 0 with an injectable clock."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import grpc
import pyotp
from google.protobuf.message import Message

from optix.user.v1 import user_service_pb2, user_service_pb2_grpc
from optix_server.infra.auth.tokens import TokenAuthority
from optix_server.infra.module import Dependencies
from optix_server.infra.peer import TrustedProxies
from optix_server.infra.settings import Settings
from optix_server.user.config import UserSettings
from optix_server.user.mfa import STEP_SECONDS
from optix_server.user.wiring import create_module
from tests.support.server import make_settings, running_server

M = TypeVar("M", bound=Message)

# bcrypt cost 4: the rules are the same, the tests are fast.
TEST_USER_SETTINGS = UserSettings(bcrypt_cost=4, bcrypt_workers=2, pepper=b"p" * 32)
STRONG_PASSWORD = "correct horse battery staple 42"


class ManualClock:
    """A clock that only moves when a test says so."""

    def __init__(self, start: datetime | None = None) -> None:
        # Start on a TOTP step boundary so step arithmetic in tests is obvious.
        self._now = start or datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)

    def now(self) -> datetime:
        """The current test time."""
        return self._now

    def advance(self, delta: timedelta) -> None:
        """Move time forward."""
        self._now += delta

    def next_totp_step(self) -> None:
        """Move to the start of the next TOTP time step."""
        seconds = int(self._now.timestamp())
        self.advance(timedelta(seconds=STEP_SECONDS - seconds % STEP_SECONDS))


@dataclasses.dataclass
class UserHarness:
    """A running user service and what tests need to poke at it."""

    address: str
    clock: ManualClock
    authority: TokenAuthority
    deps: Dependencies
    channel: grpc.aio.Channel
    stub: user_service_pb2_grpc.UserServiceAsyncStub

    def totp(self, secret: str) -> str:
        """The TOTP code of `secret` at the harness clock's time."""
        return str(pyotp.TOTP(secret).at(self.clock.now()))

    async def register(
        self, email: str = "alice@example.com", password: str = STRONG_PASSWORD
    ) -> user_service_pb2.RegisterResponse:
        """Register an account."""
        return await self.stub.Register(
            user_service_pb2.RegisterRequest(email=email, password=password)
        )

    async def login(
        self,
        email: str = "alice@example.com",
        password: str = STRONG_PASSWORD,
        address: str = "",
    ) -> user_service_pb2.LoginResponse:
        """Sign in (from `address`, via x-forwarded-for, when given)."""
        metadata = (("x-forwarded-for", address),) if address else ()
        return await self.stub.Login(
            user_service_pb2.LoginRequest(email=email, password=password), metadata=metadata
        )

    async def enable_mfa(self, access_token: str) -> tuple[str, list[str]]:
        """Set up and confirm TOTP for the token's user; (secret, recovery codes)."""
        auth = bearer(access_token)
        secret = (
            await self.stub.SetupMfa(user_service_pb2.SetupMfaRequest(), metadata=auth)
        ).secret
        confirmed = await self.stub.ConfirmMfa(
            user_service_pb2.ConfirmMfaRequest(totp_code=self.totp(secret)), metadata=auth
        )
        return secret, list(confirmed.recovery_codes)


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """Call metadata for an access token."""
    return (("authorization", f"Bearer {token}"),)


@asynccontextmanager
async def user_server(
    database_url: str,
    tmp_path: Path,
    *,
    user_settings: UserSettings = TEST_USER_SETTINGS,
    redis: tuple[str, str] | None = None,
    trusted_proxies: TrustedProxies | None = None,
) -> AsyncIterator[UserHarness]:
    """Migrate a fresh database and serve the user service on port 0 with a manual clock."""
    settings: Settings = make_settings(
        database_url,
        tmp_path,
        services=("user",),
        redis_url=redis[0] if redis else None,
        redis_prefix=redis[1] if redis else "optix:",
        trusted_proxies=trusted_proxies or TrustedProxies(),
    )
    clock = ManualClock()
    async with (
        running_server(
            settings,
            clock=clock,
            modules=lambda deps: [create_module(deps, settings=user_settings)],
        ) as running,
        running.channel() as channel,
    ):
        yield UserHarness(
            running.address,
            clock,
            running.deps.tokens,
            running.deps,
            channel,
            user_service_pb2_grpc.UserServiceStub(channel),
        )
