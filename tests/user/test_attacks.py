"""Replay, races, brute force and enumeration against a real server."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import grpc
import pyotp
from google.rpc import error_details_pb2

from optix.user.v1 import user_service_pb2
from tests.support.errors import detail, expect_error
from tests.user.harness import STRONG_PASSWORD, UserHarness


async def _enable_mfa(users: UserHarness) -> str:
    secret, _ = await users.enable_mfa((await users.register()).tokens.access_token)
    return secret


async def _complete(
    users: UserHarness, challenge: str, code: str
) -> user_service_pb2.CompleteMfaLoginResponse:
    return await users.stub.CompleteMfaLogin(
        user_service_pb2.CompleteMfaLoginRequest(challenge_id=challenge, totp_code=code)
    )


async def test_totp_code_is_accepted_once(users: UserHarness) -> None:
    secret = await _enable_mfa(users)
    users.clock.next_totp_step()
    code = users.totp(secret)
    first = (await users.login()).mfa_challenge.challenge_id
    await _complete(users, first, code)
    # The same code on a fresh challenge, still inside its time step: refused.
    second = (await users.login()).mfa_challenge.challenge_id
    await expect_error(grpc.StatusCode.UNAUTHENTICATED, _complete(users, second, code))
    # The previous step's code (within drift) is older than the one used: refused too.
    users.clock.advance(timedelta(seconds=30))
    await expect_error(grpc.StatusCode.UNAUTHENTICATED, _complete(users, second, code))
    await _complete(users, second, users.totp(secret))


async def test_totp_replay_is_refused_across_concurrent_attempts(users: UserHarness) -> None:
    secret = await _enable_mfa(users)
    users.clock.next_totp_step()
    code = users.totp(secret)
    challenges = [(await users.login()).mfa_challenge.challenge_id for _ in range(4)]
    results = await asyncio.gather(
        *(_complete(users, c, code) for c in challenges), return_exceptions=True
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1


async def test_totp_drift_of_one_step_either_way(users: UserHarness) -> None:
    secret = await _enable_mfa(users)
    users.clock.advance(timedelta(minutes=5))
    users.clock.next_totp_step()
    challenge = (await users.login()).mfa_challenge.challenge_id
    users.clock.advance(timedelta(seconds=30))
    behind = str(pyotp.TOTP(secret).at(users.clock.now() - timedelta(seconds=30)))
    await _complete(users, challenge, behind)
    challenge = (await users.login()).mfa_challenge.challenge_id
    too_old = str(pyotp.TOTP(secret).at(users.clock.now() - timedelta(seconds=60)))
    await expect_error(grpc.StatusCode.UNAUTHENTICATED, _complete(users, challenge, too_old))


async def test_concurrent_refresh_yields_at_most_one_pair(users: UserHarness) -> None:
    token = (await users.register()).tokens.refresh_token
    request = user_service_pb2.RefreshTokenRequest(refresh_token=token)
    results = await asyncio.gather(
        *(users.stub.RefreshToken(request) for _ in range(8)), return_exceptions=True
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(winners) == 1  # exactly one rotation wins; every other attempt is a replay
    assert len(winners) + len(losers) == 8
    assert all(e.code() == grpc.StatusCode.UNAUTHENTICATED for e in losers)


async def test_256_byte_password_round_trip_without_truncation(users: UserHarness) -> None:
    password = "".join(chr(ord("a") + i % 26) for i in range(256))
    assert len(password.encode()) == 256
    await users.register("long@example.com", password)
    assert (await users.login("long@example.com", password)).HasField("tokens")
    # bcrypt alone reads 72 bytes: a password equal in its first 255 bytes must still fail.
    await expect_error(
        grpc.StatusCode.UNAUTHENTICATED, users.login("long@example.com", password[:-1])
    )
    await expect_error(
        grpc.StatusCode.UNAUTHENTICATED, users.login("long@example.com", password[:72] + "x" * 184)
    )


async def test_multibyte_password_round_trip(users: UserHarness) -> None:
    password = "пароль-ключ-🔑" * 6
    await users.register("utf8@example.com", password)
    assert (await users.login("utf8@example.com", password)).HasField("tokens")


async def test_lockout_then_recovery_after_the_window(users: UserHarness) -> None:
    await users.register()
    for _ in range(5):
        await expect_error(grpc.StatusCode.UNAUTHENTICATED, users.login(password="wrong password!"))
    # Locked: even the right password is refused, with a RetryInfo saying how long.
    error = await expect_error(grpc.StatusCode.RESOURCE_EXHAUSTED, users.login())
    retry = detail(error, error_details_pb2.RetryInfo)
    assert retry is not None and 0 < retry.retry_delay.seconds <= 15 * 60
    # The lock ends with its window: the victim is never locked out for good.
    users.clock.advance(timedelta(seconds=retry.retry_delay.seconds))
    assert (await users.login()).HasField("tokens")


async def test_unknown_email_locks_the_same_way(users: UserHarness) -> None:
    for _ in range(5):
        await expect_error(grpc.StatusCode.UNAUTHENTICATED, users.login("ghost@example.com"))
    await expect_error(grpc.StatusCode.RESOURCE_EXHAUSTED, users.login("ghost@example.com"))


async def test_failed_mfa_codes_are_rate_limited(users: UserHarness) -> None:
    await _enable_mfa(users)
    challenge = (await users.login()).mfa_challenge.challenge_id
    for _ in range(5):
        await expect_error(grpc.StatusCode.UNAUTHENTICATED, _complete(users, challenge, "000000"))
    error = await expect_error(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        _complete(users, (await users.login()).mfa_challenge.challenge_id, "000000"),
    )
    assert detail(error, error_details_pb2.RetryInfo) is not None


async def test_unknown_user_and_wrong_password_look_the_same(users: UserHarness) -> None:
    await users.register()
    wrong = await expect_error(
        grpc.StatusCode.UNAUTHENTICATED, users.login(password="nope nope nope")
    )
    unknown = await expect_error(grpc.StatusCode.UNAUTHENTICATED, users.login("nobody@example.com"))
    assert wrong.details() == unknown.details()
    wrong_info = detail(wrong, error_details_pb2.ErrorInfo)
    unknown_info = detail(unknown, error_details_pb2.ErrorInfo)
    assert wrong_info is not None and unknown_info is not None
    assert wrong_info.reason == unknown_info.reason


async def test_the_right_password_resets_the_pair_counter(users: UserHarness) -> None:
    await users.register()
    for _ in range(4):
        await expect_error(grpc.StatusCode.UNAUTHENTICATED, users.login(password="wrong password!"))
    await users.login(password=STRONG_PASSWORD)
    for _ in range(4):
        await expect_error(grpc.StatusCode.UNAUTHENTICATED, users.login(password="wrong password!"))
    assert (await users.login()).HasField("tokens")
