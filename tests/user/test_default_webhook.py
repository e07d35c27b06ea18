"""The default webhook's signing secret: made when a URL is set (or changed, or on request),
shown once by UpdateMe, stored sealed, readable only by an allowed service via GetUserWebhook."""

from __future__ import annotations

import logging

import grpc
import pytest
from google.protobuf import field_mask_pb2
from sqlalchemy import text

from optix.user.v1 import user_pb2, user_service_pb2
from optix_server.infra.crypto import SecretBox, derive_key
from optix_server.user.repository import UserRepository
from tests.support.errors import expect_error, violated_fields
from tests.user.harness import TEST_USER_SETTINGS, UserHarness, bearer

URL = "https://hooks.example.com/optix"
WEBHOOK_PATH = "notification_preferences.webhook_url"
Metadata = tuple[tuple[str, str], ...]


def service(users: UserHarness, name: str = "alert") -> Metadata:
    """Call metadata with a service-identity token of `name`."""
    return bearer(users.authority.issue_service_token(name).token)


async def set_url(
    users: UserHarness, auth: Metadata, url: str = URL, *, rotate: bool = False
) -> user_service_pb2.UpdateMeResponse:
    """UpdateMe of the default webhook URL."""
    return await users.stub.UpdateMe(
        user_service_pb2.UpdateMeRequest(
            user=user_pb2.User(
                notification_preferences=user_pb2.NotificationPreferences(webhook_url=url)
            ),
            update_mask=field_mask_pb2.FieldMask(paths=[WEBHOOK_PATH]),
            rotate_webhook_signing_secret=rotate,
        ),
        metadata=auth,
    )


async def rotate(users: UserHarness, auth: Metadata) -> user_service_pb2.UpdateMeResponse:
    """UpdateMe with only a rotation (an empty mask)."""
    return await users.stub.UpdateMe(
        user_service_pb2.UpdateMeRequest(rotate_webhook_signing_secret=True), metadata=auth
    )


async def internal(users: UserHarness, name: str) -> user_service_pb2.GetUserWebhookResponse:
    """GetUserWebhook as the alert service."""
    return await users.stub.GetUserWebhook(
        user_service_pb2.GetUserWebhookRequest(name=name), metadata=service(users)
    )


async def stored(users: UserHarness, user_id: str) -> tuple[str | None, object]:
    """The raw (sealed secret, creation time) columns of the account's row."""
    async with users.deps.database.session() as session:
        row = (
            await session.execute(
                text(
                    "SELECT webhook_signing_secret, webhook_secret_create_time "
                    "FROM user_users WHERE id = :id"
                ),
                {"id": user_id},
            )
        ).one()
    return row[0], row[1]


async def signed_up(users: UserHarness) -> tuple[str, Metadata]:
    """(user name, auth metadata) of a new account."""
    registered = await users.register()
    return registered.user.name, bearer(registered.tokens.access_token)


async def test_the_secret_is_returned_once_and_stored_sealed(users: UserHarness) -> None:
    name, auth = await signed_up(users)
    user_id = name.removeprefix("users/")
    created = await set_url(users, auth)
    secret = created.webhook_signing_secret
    assert secret.startswith("whsec_") and len(secret) == len("whsec_") + 43
    prefs = created.user.notification_preferences
    assert prefs.webhook_url == URL and prefs.HasField("webhook_signing_secret_create_time")
    assert prefs.webhook_signing_secret_create_time.ToDatetime() == users.clock.now().replace(
        tzinfo=None
    )

    # At rest: sealed (AES-GCM under the pepper's own subkey), bound to this account.
    sealed, create_time = await stored(users, user_id)
    assert sealed is not None and sealed.startswith("v1:") and secret not in sealed
    assert create_time is not None
    assert TEST_USER_SETTINGS.pepper is not None
    box = SecretBox(derive_key(TEST_USER_SETTINGS.pepper, "optix user webhook secret v1"))
    assert box.open(sealed, f"{user_id}/default-webhook") == secret
    assert box.open(sealed, "someone-else/default-webhook") is None

    # Never again in a user-facing answer: GetMe carries the time only.
    me = await users.stub.GetMe(user_service_pb2.GetMeRequest(), metadata=auth)
    assert me.user.notification_preferences.webhook_signing_secret_create_time == (
        prefs.webhook_signing_secret_create_time
    )
    assert secret.encode() not in me.SerializeToString()
    # Other updates, and the same URL again, make no new secret and show none.
    again = await set_url(users, auth)
    assert again.webhook_signing_secret == ""
    assert secret.encode() not in again.SerializeToString()
    renamed = await users.stub.UpdateMe(
        user_service_pb2.UpdateMeRequest(
            user=user_pb2.User(display_name="Al"),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
        ),
        metadata=auth,
    )
    assert renamed.webhook_signing_secret == ""
    assert (await internal(users, name)).webhook_signing_secret == secret


async def test_a_new_url_or_a_rotation_makes_a_new_secret_and_clearing_drops_it(
    users: UserHarness,
) -> None:
    name, auth = await signed_up(users)
    user_id = name.removeprefix("users/")
    first = (await set_url(users, auth)).webhook_signing_secret
    moved = await set_url(users, auth, "https://other.example.com/hook")
    second = moved.webhook_signing_secret
    assert second.startswith("whsec_") and second != first
    assert (await internal(users, name)).webhook_signing_secret == second

    # A rotation needs no mask; the old secret is gone at once.
    rotated = await rotate(users, auth)
    third = rotated.webhook_signing_secret
    assert third not in ("", first, second)
    assert rotated.user.notification_preferences.webhook_url == "https://other.example.com/hook"
    read = await internal(users, name)
    assert read.webhook_signing_secret == third
    assert read.webhook_url == "https://other.example.com/hook"
    # Setting the URL and rotating in one call makes one new secret.
    both = (await set_url(users, auth, rotate=True)).webhook_signing_secret
    assert both not in ("", third)
    assert (await internal(users, name)).webhook_signing_secret == both

    cleared = await set_url(users, auth, "")
    assert cleared.webhook_signing_secret == ""
    prefs = cleared.user.notification_preferences
    assert prefs.webhook_url == "" and not prefs.HasField("webhook_signing_secret_create_time")
    assert await stored(users, user_id) == (None, None)
    empty = await internal(users, name)
    assert (empty.webhook_url, empty.webhook_signing_secret) == ("", "")
    assert not empty.HasField("webhook_signing_secret_create_time")

    # Nothing to rotate without a URL; a request that clears it and rotates is refused too.
    await expect_error(grpc.StatusCode.FAILED_PRECONDITION, rotate(users, auth))
    await expect_error(grpc.StatusCode.FAILED_PRECONDITION, set_url(users, auth, "", rotate=True))
    # An empty mask without a rotation is still INVALID_ARGUMENT.
    error = await expect_error(
        grpc.StatusCode.INVALID_ARGUMENT,
        users.stub.UpdateMe(user_service_pb2.UpdateMeRequest(), metadata=auth),
    )
    assert violated_fields(error) == {"update_mask"}


async def test_the_internal_read_needs_an_allowed_service_identity(users: UserHarness) -> None:
    name, auth = await signed_up(users)
    secret = (await set_url(users, auth)).webhook_signing_secret
    other_name, other_auth = await signed_up_again(users)

    def request(target: str) -> user_service_pb2.GetUserWebhookRequest:
        return user_service_pb2.GetUserWebhookRequest(name=target)

    # A user token is refused, for their own name too, before the name is even looked at.
    for target in (name, other_name, "users/me", "nonsense", "users/nobody"):
        for metadata in (auth, other_auth):
            await expect_error(
                grpc.StatusCode.PERMISSION_DENIED,
                users.stub.GetUserWebhook(request(target), metadata=metadata),
            )
    # So is a service not on the readers list.
    await expect_error(
        grpc.StatusCode.PERMISSION_DENIED,
        users.stub.GetUserWebhook(request(name), metadata=service(users, "watchlist")),
    )
    await expect_error(grpc.StatusCode.UNAUTHENTICATED, users.stub.GetUserWebhook(request(name)))

    read = await internal(users, name)
    assert (read.webhook_url, read.webhook_signing_secret) == (URL, secret)
    assert read.HasField("webhook_signing_secret_create_time")
    none = await internal(users, other_name)
    assert (none.webhook_url, none.webhook_signing_secret) == ("", "")
    await expect_error(grpc.StatusCode.NOT_FOUND, internal(users, "users/nobody"))
    for malformed in ("users/me/x", "users/", "nobody", "users/a.b"):
        error = await expect_error(grpc.StatusCode.INVALID_ARGUMENT, internal(users, malformed))
        assert violated_fields(error) == {"name"}


async def signed_up_again(users: UserHarness) -> tuple[str, Metadata]:
    """A second account."""
    registered = await users.register("bob@example.com")
    return registered.user.name, bearer(registered.tokens.access_token)


async def test_a_webhook_change_is_written_only_over_the_state_it_was_decided_on(
    users: UserHarness,
) -> None:
    name, auth = await signed_up(users)
    user_id = name.removeprefix("users/")
    secret = (await set_url(users, auth)).webhook_signing_secret
    repository = UserRepository(users.deps.database)
    # A writer that read an older secret loses: nothing is written.
    lost = await repository.update_user(
        user_id,
        {"webhook_signing_secret": "v1:other"},
        expect={"webhook_url": URL, "webhook_signing_secret": "v1:stale"},
    )
    assert lost is None
    assert (await internal(users, name)).webhook_signing_secret == secret


async def test_no_webhook_secret_reaches_logs_or_errors(
    users: UserHarness, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    name, auth = await signed_up(users)
    secrets = [(await set_url(users, auth)).webhook_signing_secret]
    secrets.append((await rotate(users, auth)).webhook_signing_secret)
    secrets.append((await internal(users, name)).webhook_signing_secret)
    errors = [
        await expect_error(
            grpc.StatusCode.PERMISSION_DENIED,
            users.stub.GetUserWebhook(
                user_service_pb2.GetUserWebhookRequest(name=name), metadata=auth
            ),
        ),
        await expect_error(
            grpc.StatusCode.FAILED_PRECONDITION, set_url(users, auth, "", rotate=True)
        ),
    ]
    captured = capsys.readouterr()
    text_seen = caplog.text + captured.out + captured.err
    text_seen += "".join((e.details() or "") + repr(e.trailing_metadata()) for e in errors)
    for secret in secrets:
        assert secret and secret not in text_seen
