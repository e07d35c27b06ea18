"""Races, identity normalisation, lockout abuse, oversized input and the public list."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2

from optix.user.v1 import user_pb2, user_service_pb2
from optix_server.infra.auth.interceptor import AuthInterceptor
from optix_server.infra.peer import TrustedProxies, client_address
from optix_server.user.validation import normalise_email
from optix_server.user.wiring import FULL_NAME, PUBLIC_METHODS
from tests.support.errors import expect_error, violated_fields
from tests.user.harness import STRONG_PASSWORD, UserHarness, bearer, user_server

# --- one mailbox, one account ---------------------------------------------------------------


async def test_concurrent_registers_of_one_email_give_one_account(users: UserHarness) -> None:
    spellings = ["race@example.com", "RACE@example.com", " race@EXAMPLE.com", "Race@example.com."]
    results = await asyncio.gather(
        *(users.register(email) for email in spellings * 2), return_exceptions=True
    )
    winners = [r for r in results if isinstance(r, user_service_pb2.RegisterResponse)]
    losers = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(winners) == 1
    assert len(losers) == len(results) - 1
    assert {e.code() for e in losers} == {grpc.StatusCode.ALREADY_EXISTS}


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("alice@exämple.com", "ALICE@xn--exmple-cua.com"),
        ("alice@xn--exmple-cua.com", "alice@EXÄMPLE.com"),
        # A zero-width space is mapped away by IDNA: the same domain, not a look-alike account.
        ("alice@example.com", "alice@exam\u200bple.com"),
    ],
)
async def test_every_spelling_of_a_domain_is_one_account(
    users: UserHarness, first: str, second: str
) -> None:
    await users.register(first)
    await expect_error(grpc.StatusCode.ALREADY_EXISTS, users.register(second))
    assert (await users.login(second)).HasField("tokens")


async def test_email_change_to_another_spelling_of_a_taken_email(users: UserHarness) -> None:
    await users.register("bob@exämple.com")
    auth = bearer((await users.register()).tokens.access_token)
    await expect_error(
        grpc.StatusCode.ALREADY_EXISTS,
        users.stub.UpdateMe(
            user_service_pb2.UpdateMeRequest(
                user=user_pb2.User(email="BOB@xn--exmple-cua.com"),
                update_mask=field_mask_pb2.FieldMask(paths=["email"]),
                current_password=STRONG_PASSWORD,
            ),
            metadata=auth,
        ),
    )


def test_normalised_email_forms() -> None:
    assert normalise_email(" Bob@Exämple.COM ") == ("Bob@exämple.com", "bob@xn--exmple-cua.com")
    same = [normalise_email(e) for e in ("bob@xn--exmple-cua.com", "BOB@exämple.com.")]
    assert same[0] is not None and same[1] is not None and same[0][1] == same[1][1]
    assert normalise_email("bob@-bad-.com") is None


# --- passwords ------------------------------------------------------------------------------


async def test_a_password_register_accepts_always_signs_in(users: UserHarness) -> None:
    # 2 code points per letter as sent, 1 after NFKC: 260 as sent is more than Login reads.
    decomposed = "".join(f"{letter}\u0301" for letter in "aeiou" * 26)
    assert len(decomposed) == 260
    error = await expect_error(
        grpc.StatusCode.INVALID_ARGUMENT, users.register("nfkc@example.com", decomposed)
    )
    assert violated_fields(error) == {"password"}
    at_limit = decomposed[:256]
    await users.register("nfkc@example.com", at_limit)
    assert (await users.login("nfkc@example.com", at_limit)).HasField("tokens")


async def test_password_change_ends_pending_mfa_challenges(users: UserHarness) -> None:
    access = (await users.register()).tokens.access_token
    _, codes = await users.enable_mfa(access)
    stale = (await users.login()).mfa_challenge.challenge_id
    await users.stub.ChangePassword(
        user_service_pb2.ChangePasswordRequest(
            current_password=STRONG_PASSWORD, new_password="another long passphrase 7"
        ),
        metadata=bearer(access),
    )
    await expect_error(
        grpc.StatusCode.UNAUTHENTICATED,
        users.stub.CompleteMfaLogin(
            user_service_pb2.CompleteMfaLoginRequest(challenge_id=stale, recovery_code=codes[0])
        ),
    )


# --- second factors -------------------------------------------------------------------------


async def test_a_recovery_code_is_single_use_under_concurrency(users: UserHarness) -> None:
    _, codes = await users.enable_mfa((await users.register()).tokens.access_token)
    challenges = [(await users.login()).mfa_challenge.challenge_id for _ in range(4)]
    results = await asyncio.gather(
        *(
            users.stub.CompleteMfaLogin(
                user_service_pb2.CompleteMfaLoginRequest(challenge_id=c, recovery_code=codes[0])
            )
            for c in challenges
        ),
        return_exceptions=True,
    )
    losers = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(losers) == len(results) - 1
    assert {e.code() for e in losers} == {grpc.StatusCode.UNAUTHENTICATED}


# --- lockout cannot be turned against the owner ---------------------------------------------


@pytest.fixture
async def proxied_users(database_url: str, tmp_path: Path) -> AsyncIterator[UserHarness]:
    """The user service trusting its loopback peer as a proxy, so tests choose the client
    address through x-forwarded-for."""
    proxies = TrustedProxies.parse("127.0.0.1/32")
    async with user_server(database_url, tmp_path, trusted_proxies=proxies) as harness:
        yield harness


async def test_distributed_guessing_does_not_lock_the_owner_out(proxied_users: UserHarness) -> None:
    users = proxied_users
    await users.register()
    assert (await users.login(address="198.51.100.7")).HasField("tokens")
    # 5 attackers x 4 guesses: under each pair limit, at the account-wide limit (20).
    for attacker in range(5):
        for _ in range(4):
            await expect_error(
                grpc.StatusCode.UNAUTHENTICATED,
                users.login(password="guess guess guess", address=f"203.0.113.{attacker}"),
            )
    # A new address is held back by the account-wide limit, even with the right password...
    await expect_error(grpc.StatusCode.RESOURCE_EXHAUSTED, users.login(address="192.0.2.99"))
    # ...but the owner's known address is not.
    assert (await users.login(address="198.51.100.7")).HasField("tokens")


async def test_wrong_codes_elsewhere_do_not_block_the_owners_mfa(
    proxied_users: UserHarness,
) -> None:
    users = proxied_users
    owner, thief = "198.51.100.7", "203.0.113.5"
    access = (await users.register()).tokens.access_token
    secret, codes = await users.enable_mfa(access)
    owner_challenge = (await users.login(address=owner)).mfa_challenge.challenge_id
    await users.stub.CompleteMfaLogin(
        user_service_pb2.CompleteMfaLoginRequest(
            challenge_id=owner_challenge, recovery_code=codes[0]
        ),
        metadata=(("x-forwarded-for", owner),),
    )
    # The password leaked: the thief burns the account-wide MFA allowance from elsewhere.
    thief_challenge = (await users.login(address=thief)).mfa_challenge.challenge_id
    wrong = user_service_pb2.CompleteMfaLoginRequest(
        challenge_id=thief_challenge, totp_code="000000"
    )
    for _attempt in range(5):
        await expect_error(
            grpc.StatusCode.UNAUTHENTICATED,
            users.stub.CompleteMfaLogin(wrong, metadata=(("x-forwarded-for", thief),)),
        )
    users.clock.next_totp_step()
    owner_challenge = (await users.login(address=owner)).mfa_challenge.challenge_id
    reply = await users.stub.CompleteMfaLogin(
        user_service_pb2.CompleteMfaLoginRequest(
            challenge_id=owner_challenge, totp_code=users.totp(secret)
        ),
        metadata=(("x-forwarded-for", owner),),
    )
    assert reply.tokens.access_token


def test_ipv6_clients_are_limited_per_64() -> None:
    nobody = TrustedProxies()
    first = client_address("ipv6:%5B2001:db8:1:2::1%5D:4000", None, nobody)
    other_host = client_address("ipv6:%5B2001:db8:1:2:ffff::9%5D:4001", None, nobody)
    other_net = client_address("ipv6:%5B2001:db8:1:3::1%5D:4000", None, nobody)
    assert first == other_host != other_net
    assert client_address("ipv6:%5B::ffff:192.0.2.1%5D:1", None, nobody) == "192.0.2.1"
    forwarded = [("x-forwarded-for", "1.1.1.1, 2001:db8:1:2::77")]
    edge = TrustedProxies.parse("10.0.0.1")
    assert client_address("ipv4:10.0.0.1:1", forwarded, edge) == first


async def test_an_untrusted_peer_cannot_name_its_address(database_url: str, tmp_path: Path) -> None:
    # Without trusted proxies, x-forwarded-for is the client's own claim: rotating it must not
    # buy more guesses. (The pair limit is 5 per account and address.)
    async with user_server(database_url, tmp_path) as users:
        await users.register()
        for attempt in range(5):
            await expect_error(
                grpc.StatusCode.UNAUTHENTICATED,
                users.login(password="guess guess guess", address=f"203.0.113.{attempt}"),
            )
        await expect_error(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            users.login(password="guess guess guess", address="203.0.113.99"),
        )


# --- oversized input ------------------------------------------------------------------------

_HUGE = "x" * 1_000_000
Call = Callable[[UserHarness, tuple[tuple[str, str], ...]], Awaitable[Any]]


def _update(paths: list[str] | None = None, **user: Any) -> Call:
    mask = list(user) if paths is None else paths

    def call(users: UserHarness, auth: tuple[tuple[str, str], ...]) -> Awaitable[Any]:
        request = user_service_pb2.UpdateMeRequest(
            user=user_pb2.User(**user),
            update_mask=field_mask_pb2.FieldMask(paths=mask),
            current_password=_HUGE,
        )
        return users.stub.UpdateMe(request, metadata=auth)

    return call


def _stub_call(method: str, **fields: Any) -> Call:
    def call(users: UserHarness, auth: tuple[tuple[str, str], ...]) -> Awaitable[Any]:
        rpc = getattr(users.stub, method)
        request_type = getattr(user_service_pb2, f"{method}Request")
        return rpc(request_type(**fields), metadata=auth)  # type: ignore[no-any-return]

    return call


HUGE_REQUESTS: dict[str, Call] = {
    "Register email": _stub_call("Register", email=_HUGE, password=STRONG_PASSWORD),
    "Register password": _stub_call("Register", email="h@example.com", password=_HUGE),
    "Register display_name": _stub_call(
        "Register", email="h@example.com", password=STRONG_PASSWORD, display_name=_HUGE
    ),
    "Register time_zone": _stub_call(
        "Register", email="h@example.com", password=STRONG_PASSWORD, time_zone=_HUGE
    ),
    "Login": _stub_call("Login", email=_HUGE, password=_HUGE),
    "CompleteMfaLogin totp": _stub_call("CompleteMfaLogin", challenge_id=_HUGE, totp_code=_HUGE),
    "CompleteMfaLogin recovery": _stub_call(
        "CompleteMfaLogin", challenge_id="mfa_x", recovery_code=_HUGE
    ),
    "RefreshToken": _stub_call("RefreshToken", refresh_token=_HUGE),
    "Logout": _stub_call("Logout", refresh_token=_HUGE),
    "ChangePassword": _stub_call("ChangePassword", current_password=_HUGE, new_password=_HUGE),
    "ConfirmMfa": _stub_call("ConfirmMfa", totp_code=_HUGE),
    "DisableMfa": _stub_call("DisableMfa", recovery_code=_HUGE),
    "UpdateMe email": _update(email=_HUGE),
    "UpdateMe display_name": _update(display_name=_HUGE),
    "UpdateMe time_zone": _update(time_zone=_HUGE),
    "UpdateMe webhook": _update(
        notification_preferences=user_pb2.NotificationPreferences(webhook_url=_HUGE),
        paths=["notification_preferences.webhook_url"],
    ),
    "UpdateMe unknown path": _update(paths=[_HUGE]),
    "UpdateMe many paths": _update(paths=[f"p{i}" for i in range(10_000)]),
}


@pytest.mark.parametrize("case", sorted(HUGE_REQUESTS))
async def test_oversized_fields_are_invalid_argument(users: UserHarness, case: str) -> None:
    auth = bearer((await users.register()).tokens.access_token)
    error = await expect_error(grpc.StatusCode.INVALID_ARGUMENT, HUGE_REQUESTS[case](users, auth))
    assert violated_fields(error)
    assert _HUGE[:100] not in (error.details() or "")


# --- the public list ------------------------------------------------------------------------


def test_the_public_list_is_exactly_the_issue_list() -> None:
    prefix = f"/{FULL_NAME}/"
    expected = {"Register", "Login", "CompleteMfaLogin", "RefreshToken", "GetJwks"}
    assert {prefix + name for name in expected} == PUBLIC_METHODS
    interceptor = AuthInterceptor(authority=None, public_methods=PUBLIC_METHODS)  # type: ignore[arg-type]
    for method in user_service_pb2.DESCRIPTOR.services_by_name["UserService"].methods:
        assert interceptor.is_public(prefix + method.name) == (method.name in expected)
    assert interceptor.is_public("/grpc.health.v1.Health/Check")
    assert interceptor.is_public("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
    assert not interceptor.is_public("/grpc.health.v1.Healthy/Check")
    assert not interceptor.is_public(f"/{FULL_NAME}.Evil/Login")


@pytest.mark.parametrize(
    "method",
    sorted(
        m.name
        for m in user_service_pb2.DESCRIPTOR.services_by_name["UserService"].methods
        if f"/{FULL_NAME}/{m.name}" not in PUBLIC_METHODS
    ),
)
async def test_every_private_rpc_needs_a_token(users: UserHarness, method: str) -> None:
    await expect_error(grpc.StatusCode.UNAUTHENTICATED, _stub_call(method)(users, ()))


# --- unexpected failures --------------------------------------------------------------------


async def test_an_unexpected_failure_is_a_bare_internal(
    users: UserHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    access = (await users.register()).tokens.access_token

    async def broken(*args: object) -> None:
        raise RuntimeError(f"db exploded near {STRONG_PASSWORD}")

    monkeypatch.setattr("optix_server.user.repository.UserRepository.get_user", broken)
    error = await expect_error(
        grpc.StatusCode.INTERNAL,
        users.stub.GetMe(user_service_pb2.GetMeRequest(), metadata=bearer(access)),
    )
    assert error.details() == "internal error"
