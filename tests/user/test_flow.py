"""The whole life of an account over a real server: register, MFA, sign-in, refresh, logout."""

from __future__ import annotations

from datetime import timedelta

import grpc
from google.protobuf import field_mask_pb2

from optix.user.v1 import user_pb2, user_service_pb2
from tests.support.errors import expect_error
from tests.user.harness import STRONG_PASSWORD, UserHarness, bearer


async def test_register_mfa_login_refresh_reuse_logout(users: UserHarness) -> None:
    registered = await users.register("Alice@Example.COM")
    assert registered.user.email == "Alice@example.com"
    assert registered.user.name.startswith("users/")
    assert registered.tokens.token_type == "Bearer"
    auth = bearer(registered.tokens.access_token)

    me = await users.stub.GetMe(user_service_pb2.GetMeRequest(), metadata=auth)
    assert me.user.name == registered.user.name and not me.user.mfa_enabled

    setup = await users.stub.SetupMfa(user_service_pb2.SetupMfaRequest(), metadata=auth)
    assert setup.otpauth_uri.startswith("otpauth://totp/")
    confirmed = await users.stub.ConfirmMfa(
        user_service_pb2.ConfirmMfaRequest(totp_code=users.totp(setup.secret)), metadata=auth
    )
    assert len(confirmed.recovery_codes) == 10

    # Sign-in now stops at an MFA challenge; emails are matched case-insensitively.
    login = await users.login("alice@EXAMPLE.com")
    assert login.WhichOneof("result") == "mfa_challenge"
    users.clock.next_totp_step()
    completed = await users.stub.CompleteMfaLogin(
        user_service_pb2.CompleteMfaLoginRequest(
            challenge_id=login.mfa_challenge.challenge_id, totp_code=users.totp(setup.secret)
        )
    )
    first = completed.tokens

    # Rotation: a new pair; the family's absolute expiry does not move.
    users.clock.advance(timedelta(minutes=1))
    rotated = (
        await users.stub.RefreshToken(
            user_service_pb2.RefreshTokenRequest(refresh_token=first.refresh_token)
        )
    ).tokens
    assert rotated.refresh_token != first.refresh_token
    assert rotated.refresh_token_expire_time == first.refresh_token_expire_time
    me = await users.stub.GetMe(
        user_service_pb2.GetMeRequest(), metadata=bearer(rotated.access_token)
    )
    assert me.user.mfa_enabled

    # Reuse of the retired token: refused, and the whole family (the new token too) is revoked.
    await expect_error(
        grpc.StatusCode.UNAUTHENTICATED,
        users.stub.RefreshToken(
            user_service_pb2.RefreshTokenRequest(refresh_token=first.refresh_token)
        ),
    )
    await expect_error(
        grpc.StatusCode.UNAUTHENTICATED,
        users.stub.RefreshToken(
            user_service_pb2.RefreshTokenRequest(refresh_token=rotated.refresh_token)
        ),
    )
    # ...and its access tokens stop working at once, not only when they expire.
    await expect_error(
        grpc.StatusCode.UNAUTHENTICATED,
        users.stub.GetMe(user_service_pb2.GetMeRequest(), metadata=bearer(rotated.access_token)),
    )

    # A new sign-in (recovery code this time), then logout ends that session.
    login = await users.login()
    session = (
        await users.stub.CompleteMfaLogin(
            user_service_pb2.CompleteMfaLoginRequest(
                challenge_id=login.mfa_challenge.challenge_id,
                recovery_code=confirmed.recovery_codes[0].upper(),
            )
        )
    ).tokens
    await users.stub.Logout(
        user_service_pb2.LogoutRequest(refresh_token=session.refresh_token),
        metadata=bearer(session.access_token),
    )
    await expect_error(
        grpc.StatusCode.UNAUTHENTICATED,
        users.stub.RefreshToken(
            user_service_pb2.RefreshTokenRequest(refresh_token=session.refresh_token)
        ),
    )
    await expect_error(
        grpc.StatusCode.UNAUTHENTICATED,
        users.stub.GetMe(user_service_pb2.GetMeRequest(), metadata=bearer(session.access_token)),
    )


async def test_logout_of_another_users_session_is_refused(users: UserHarness) -> None:
    alice = (await users.register()).tokens
    bob = (await users.register("bob@example.com")).tokens
    await expect_error(
        grpc.StatusCode.UNAUTHENTICATED,
        users.stub.Logout(
            user_service_pb2.LogoutRequest(refresh_token=bob.refresh_token),
            metadata=bearer(alice.access_token),
        ),
    )
    await users.stub.RefreshToken(
        user_service_pb2.RefreshTokenRequest(refresh_token=bob.refresh_token)
    )


async def test_refresh_token_has_an_absolute_lifetime(users: UserHarness) -> None:
    tokens = (await users.register()).tokens
    users.clock.advance(timedelta(days=29))
    tokens = (
        await users.stub.RefreshToken(
            user_service_pb2.RefreshTokenRequest(refresh_token=tokens.refresh_token)
        )
    ).tokens
    users.clock.advance(timedelta(days=1, seconds=1))
    await expect_error(
        grpc.StatusCode.UNAUTHENTICATED,
        users.stub.RefreshToken(
            user_service_pb2.RefreshTokenRequest(refresh_token=tokens.refresh_token)
        ),
    )


async def test_recovery_code_works_once(users: UserHarness) -> None:
    _, codes = await users.enable_mfa((await users.register()).tokens.access_token)
    challenge = (await users.login()).mfa_challenge.challenge_id
    await users.stub.CompleteMfaLogin(
        user_service_pb2.CompleteMfaLoginRequest(challenge_id=challenge, recovery_code=codes[1])
    )
    challenge = (await users.login()).mfa_challenge.challenge_id
    await expect_error(
        grpc.StatusCode.UNAUTHENTICATED,
        users.stub.CompleteMfaLogin(
            user_service_pb2.CompleteMfaLoginRequest(challenge_id=challenge, recovery_code=codes[1])
        ),
    )


async def test_challenge_is_single_use_and_expires(users: UserHarness) -> None:
    _, codes = await users.enable_mfa((await users.register()).tokens.access_token)
    challenge = (await users.login()).mfa_challenge.challenge_id
    await users.stub.CompleteMfaLogin(
        user_service_pb2.CompleteMfaLoginRequest(challenge_id=challenge, recovery_code=codes[0])
    )
    await expect_error(
        grpc.StatusCode.UNAUTHENTICATED,
        users.stub.CompleteMfaLogin(
            user_service_pb2.CompleteMfaLoginRequest(challenge_id=challenge, recovery_code=codes[1])
        ),
    )
    challenge = (await users.login()).mfa_challenge.challenge_id
    users.clock.advance(timedelta(minutes=5, seconds=1))
    await expect_error(
        grpc.StatusCode.UNAUTHENTICATED,
        users.stub.CompleteMfaLogin(
            user_service_pb2.CompleteMfaLoginRequest(challenge_id=challenge, recovery_code=codes[1])
        ),
    )


async def test_disable_mfa_needs_a_current_code(users: UserHarness) -> None:
    access_token = (await users.register()).tokens.access_token
    auth = bearer(access_token)
    secret, _ = await users.enable_mfa(access_token)
    # The confirming code was spent: it cannot disable MFA again in the same step.
    await expect_error(
        grpc.StatusCode.PERMISSION_DENIED,
        users.stub.DisableMfa(
            user_service_pb2.DisableMfaRequest(totp_code=users.totp(secret)), metadata=auth
        ),
    )
    users.clock.next_totp_step()
    await users.stub.DisableMfa(
        user_service_pb2.DisableMfaRequest(totp_code=users.totp(secret)), metadata=auth
    )
    login = await users.login()
    assert login.WhichOneof("result") == "tokens"


async def test_change_password_ends_other_sessions(users: UserHarness) -> None:
    first = (await users.register()).tokens
    other = (await users.login()).tokens
    changed = (
        await users.stub.ChangePassword(
            user_service_pb2.ChangePasswordRequest(
                current_password=STRONG_PASSWORD, new_password="a different long passphrase"
            ),
            metadata=bearer(first.access_token),
        )
    ).tokens
    for old in (first, other):
        await expect_error(
            grpc.StatusCode.UNAUTHENTICATED,
            users.stub.RefreshToken(
                user_service_pb2.RefreshTokenRequest(refresh_token=old.refresh_token)
            ),
        )
    await users.stub.RefreshToken(
        user_service_pb2.RefreshTokenRequest(refresh_token=changed.refresh_token)
    )
    await expect_error(
        grpc.StatusCode.UNAUTHENTICATED,
        users.stub.GetMe(user_service_pb2.GetMeRequest(), metadata=bearer(other.access_token)),
    )
    await users.stub.GetMe(user_service_pb2.GetMeRequest(), metadata=bearer(changed.access_token))
    await expect_error(grpc.StatusCode.UNAUTHENTICATED, users.login())
    assert (await users.login(password="a different long passphrase")).HasField("tokens")


async def test_update_me_honours_the_mask(users: UserHarness) -> None:
    auth = bearer((await users.register()).tokens.access_token)
    request = user_service_pb2.UpdateMeRequest(
        user=user_pb2.User(
            display_name="Alice",
            time_zone="America/New_York",
            notification_preferences=user_pb2.NotificationPreferences(
                email_enabled=True, webhook_url="https://hooks.example.com/a"
            ),
        ),
        update_mask=field_mask_pb2.FieldMask(
            paths=["display_name", "notification_preferences.webhook_url"]
        ),
    )
    updated = (await users.stub.UpdateMe(request, metadata=auth)).user
    assert updated.display_name == "Alice"
    assert updated.time_zone == "UTC"  # not in the mask: unchanged
    assert updated.notification_preferences.webhook_url == "https://hooks.example.com/a"
    assert not updated.notification_preferences.email_enabled  # not in the mask
    assert updated.notification_preferences.push_enabled  # default kept

    request.update_mask.paths[:] = ["time_zone"]
    updated = (await users.stub.UpdateMe(request, metadata=auth)).user
    assert updated.time_zone == "America/New_York" and updated.display_name == "Alice"


async def test_email_change_requires_the_password(users: UserHarness) -> None:
    auth = bearer((await users.register()).tokens.access_token)
    await users.register("bob@example.com")
    mask = field_mask_pb2.FieldMask(paths=["email"])
    new_user = user_pb2.User(email="alice@new.example.com")
    await expect_error(
        grpc.StatusCode.INVALID_ARGUMENT,
        users.stub.UpdateMe(
            user_service_pb2.UpdateMeRequest(user=new_user, update_mask=mask), metadata=auth
        ),
    )
    await expect_error(
        grpc.StatusCode.PERMISSION_DENIED,
        users.stub.UpdateMe(
            user_service_pb2.UpdateMeRequest(
                user=new_user, update_mask=mask, current_password="not the password"
            ),
            metadata=auth,
        ),
    )
    await expect_error(
        grpc.StatusCode.ALREADY_EXISTS,
        users.stub.UpdateMe(
            user_service_pb2.UpdateMeRequest(
                user=user_pb2.User(email="BOB@example.com"),
                update_mask=mask,
                current_password=STRONG_PASSWORD,
            ),
            metadata=auth,
        ),
    )
    updated = await users.stub.UpdateMe(
        user_service_pb2.UpdateMeRequest(
            user=new_user, update_mask=mask, current_password=STRONG_PASSWORD
        ),
        metadata=auth,
    )
    assert updated.user.email == "alice@new.example.com"
    assert (await users.login("alice@new.example.com")).HasField("tokens")


async def test_duplicate_register_is_already_exists(users: UserHarness) -> None:
    await users.register("carol@example.com")
    await expect_error(grpc.StatusCode.ALREADY_EXISTS, users.register(" CAROL@example.com "))
