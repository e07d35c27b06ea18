"""Bad input is INVALID_ARGUMENT with a field violation per bad field; nothing secret leaks."""

from __future__ import annotations

import logging

import grpc
import pytest
from google.protobuf import field_mask_pb2

from optix.user.v1 import user_pb2, user_service_pb2
from tests.support.errors import expect_error, rpc_status, violated_fields
from tests.user.harness import STRONG_PASSWORD, UserHarness, bearer


@pytest.mark.parametrize(
    ("request_fields", "bad_fields"),
    [
        ({"email": "", "password": ""}, {"email", "password"}),
        ({"email": "not-an-email", "password": STRONG_PASSWORD}, {"email"}),
        ({"email": "a@b", "password": STRONG_PASSWORD}, {"email"}),
        ({"email": "x" * 250 + "@example.com", "password": STRONG_PASSWORD}, {"email"}),
        ({"email": "a@example.com", "password": "short"}, {"password"}),
        ({"email": "a@example.com", "password": "p" * 257 + "q"}, {"password"}),
        ({"email": "a@example.com", "password": "password123"}, {"password"}),
        ({"email": "a@example.com", "password": "Qwerty123456"}, {"password"}),
        ({"email": "a@example.com", "password": "aaaaaaaaaaaa"}, {"password"}),
        (
            {"email": "a@example.com", "password": STRONG_PASSWORD, "display_name": "n" * 101},
            {"display_name"},
        ),
        (
            {"email": "a@example.com", "password": STRONG_PASSWORD, "time_zone": "Mars/Olympus"},
            {"time_zone"},
        ),
        (
            {"email": "a@example.com", "password": STRONG_PASSWORD, "time_zone": "../etc/passwd"},
            {"time_zone"},
        ),
        (
            {"email": "bad", "password": "x", "display_name": "\x00", "time_zone": "Nope"},
            {"email", "password", "display_name", "time_zone"},
        ),
    ],
)
async def test_register_field_violations(
    users: UserHarness, request_fields: dict[str, str], bad_fields: set[str]
) -> None:
    error = await expect_error(
        grpc.StatusCode.INVALID_ARGUMENT,
        users.stub.Register(user_service_pb2.RegisterRequest(**request_fields)),
    )
    assert violated_fields(error) == bad_fields
    # The password never comes back in the message or the details.
    password = request_fields.get("password", "")
    if len(password) >= 5:  # a one-letter password occurs in any text
        assert password not in (error.details() or "")
        assert password.encode() not in rpc_status(error).SerializeToString()


async def test_register_accepts_a_valid_time_zone_and_display_name(users: UserHarness) -> None:
    reply = await users.stub.Register(
        user_service_pb2.RegisterRequest(
            email="tz@example.com",
            password=STRONG_PASSWORD,
            display_name="Zoë",
            time_zone="Europe/Berlin",
        )
    )
    assert reply.user.time_zone == "Europe/Berlin" and reply.user.display_name == "Zoë"


async def test_login_rejects_oversized_fields(users: UserHarness) -> None:
    error = await expect_error(
        grpc.StatusCode.INVALID_ARGUMENT,
        users.stub.Login(user_service_pb2.LoginRequest(email="e" * 300, password="p" * 300)),
    )
    assert violated_fields(error) == {"email", "password"}


@pytest.mark.parametrize(
    ("paths", "user", "bad_fields"),
    [
        ([], user_pb2.User(), {"update_mask"}),
        (["mfa_enabled"], user_pb2.User(), {"update_mask"}),
        (["time_zone"], user_pb2.User(time_zone="Nowhere/Land"), {"user.time_zone"}),
        (["display_name"], user_pb2.User(display_name="d" * 101), {"user.display_name"}),
        (
            ["notification_preferences"],
            user_pb2.User(
                notification_preferences=user_pb2.NotificationPreferences(
                    webhook_url="http://plain.example.com/hook"
                )
            ),
            {"user.notification_preferences.webhook_url"},
        ),
        (
            ["notification_preferences.webhook_url"],
            user_pb2.User(
                notification_preferences=user_pb2.NotificationPreferences(
                    webhook_url="https://user:pw@example.com/hook"
                )
            ),
            {"user.notification_preferences.webhook_url"},
        ),
        (["email"], user_pb2.User(email="nope"), {"user.email", "current_password"}),
    ],
)
async def test_update_me_field_violations(
    users: UserHarness, paths: list[str], user: user_pb2.User, bad_fields: set[str]
) -> None:
    auth = bearer((await users.register()).tokens.access_token)
    error = await expect_error(
        grpc.StatusCode.INVALID_ARGUMENT,
        users.stub.UpdateMe(
            user_service_pb2.UpdateMeRequest(
                user=user, update_mask=field_mask_pb2.FieldMask(paths=paths)
            ),
            metadata=auth,
        ),
    )
    assert violated_fields(error) == bad_fields


async def test_mfa_inputs_are_validated(users: UserHarness) -> None:
    auth = bearer((await users.register()).tokens.access_token)
    await users.stub.SetupMfa(user_service_pb2.SetupMfaRequest(), metadata=auth)
    error = await expect_error(
        grpc.StatusCode.INVALID_ARGUMENT,
        users.stub.ConfirmMfa(user_service_pb2.ConfirmMfaRequest(totp_code="12ab"), metadata=auth),
    )
    assert violated_fields(error) == {"totp_code"}
    error = await expect_error(
        grpc.StatusCode.INVALID_ARGUMENT,
        users.stub.CompleteMfaLogin(user_service_pb2.CompleteMfaLoginRequest()),
    )
    assert violated_fields(error) == {"challenge_id", "factor"}


async def test_no_secret_reaches_logs_or_errors(
    users: UserHarness, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    registered = await users.register()
    totp_secret, codes = await users.enable_mfa(registered.tokens.access_token)
    # Provoke the error paths too: reuse, wrong code, wrong password.
    refreshed = await users.stub.RefreshToken(
        user_service_pb2.RefreshTokenRequest(refresh_token=registered.tokens.refresh_token)
    )
    errors = [
        await expect_error(
            grpc.StatusCode.UNAUTHENTICATED,
            users.stub.RefreshToken(
                user_service_pb2.RefreshTokenRequest(refresh_token=registered.tokens.refresh_token)
            ),
        ),
        await expect_error(
            grpc.StatusCode.UNAUTHENTICATED, users.login(password="wrong-password-1")
        ),
    ]
    challenge = (await users.login()).mfa_challenge.challenge_id
    errors.append(
        await expect_error(
            grpc.StatusCode.UNAUTHENTICATED,
            users.stub.CompleteMfaLogin(
                user_service_pb2.CompleteMfaLoginRequest(challenge_id=challenge, totp_code="000000")
            ),
        )
    )
    captured = capsys.readouterr()
    text = caplog.text + captured.out + captured.err
    text += "".join((e.details() or "") + repr(rpc_status(e)) for e in errors)
    secrets = [
        STRONG_PASSWORD,
        "wrong-password-1",
        registered.tokens.access_token,
        registered.tokens.refresh_token,
        refreshed.tokens.refresh_token,
        totp_secret,
        challenge,
        *codes,
    ]
    for secret in secrets:
        assert secret not in text
