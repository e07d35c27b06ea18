"""Domain values of the user service to and from protobuf messages."""

from __future__ import annotations

from optix.user.v1 import user_pb2, user_service_pb2
from optix_server.common.proto_values import timestamp
from optix_server.user.domain import (
    MfaChallenge,
    ProfileUpdate,
    TokenPair,
    UserProfile,
    UserWebhook,
)


def token_pair(pair: TokenPair) -> user_pb2.TokenPair:
    """TokenPair message."""
    return user_pb2.TokenPair(
        access_token=pair.access_token,
        access_token_expire_time=timestamp(pair.access_token_expire_time),
        refresh_token=pair.refresh_token,
        refresh_token_expire_time=timestamp(pair.refresh_token_expire_time),
        token_type="Bearer",
    )


def mfa_challenge(challenge: MfaChallenge) -> user_pb2.MfaChallenge:
    """MfaChallenge message."""
    return user_pb2.MfaChallenge(
        challenge_id=challenge.challenge_id, expire_time=timestamp(challenge.expire_time)
    )


def user(profile: UserProfile) -> user_pb2.User:
    """User message."""
    prefs = profile.notifications
    message = user_pb2.User(
        name=profile.name,
        email=profile.email,
        display_name=profile.display_name,
        time_zone=profile.time_zone,
        notification_preferences=user_pb2.NotificationPreferences(
            push_enabled=prefs.push_enabled,
            email_enabled=prefs.email_enabled,
            webhook_url=prefs.webhook_url,
        ),
        mfa_enabled=profile.mfa_enabled,
        create_time=timestamp(profile.create_time),
        update_time=timestamp(profile.update_time),
    )
    if prefs.webhook_secret_create_time is not None:
        message.notification_preferences.webhook_signing_secret_create_time.CopyFrom(
            timestamp(prefs.webhook_secret_create_time)
        )
    return message


def user_webhook(webhook: UserWebhook) -> user_service_pb2.GetUserWebhookResponse:
    """GetUserWebhookResponse (internal: it carries the secret in clear)."""
    reply = user_service_pb2.GetUserWebhookResponse(
        webhook_url=webhook.url, webhook_signing_secret=webhook.secret
    )
    if webhook.secret_create_time is not None:
        reply.webhook_signing_secret_create_time.CopyFrom(timestamp(webhook.secret_create_time))
    return reply


def profile_update(request: user_service_pb2.UpdateMeRequest) -> ProfileUpdate:
    """The UpdateMe request as a domain ProfileUpdate."""
    prefs = request.user.notification_preferences
    return ProfileUpdate(
        paths=tuple(request.update_mask.paths),
        email=request.user.email,
        display_name=request.user.display_name,
        time_zone=request.user.time_zone,
        push_enabled=prefs.push_enabled,
        email_enabled=prefs.email_enabled,
        webhook_url=prefs.webhook_url,
        current_password=request.current_password,
        rotate_webhook_secret=request.rotate_webhook_signing_secret,
    )
