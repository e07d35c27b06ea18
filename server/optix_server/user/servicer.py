"""The UserService gRPC servicer: thin translation between protobuf and UserService."""

from __future__ import annotations

from typing import Any

from grpc import aio

from optix.user.v1 import user_pb2, user_service_pb2, user_service_pb2_grpc
from optix_server.common.proto_values import timestamp
from optix_server.infra.auth.principal import PrincipalKind, current_principal, current_user_id
from optix_server.infra.peer import TrustedProxies, client_address
from optix_server.user import convert
from optix_server.user.domain import MfaChallenge, SecondFactor
from optix_server.user.service import UserService

Context = aio.ServicerContext[Any, Any]


def _factor(message: Any) -> SecondFactor:
    which = message.WhichOneof("factor")
    if which == "totp_code":
        return SecondFactor(totp_code=message.totp_code)
    if which == "recovery_code":
        return SecondFactor(recovery_code=message.recovery_code)
    return SecondFactor()


class UserServicer(user_service_pb2_grpc.UserServiceServicer):
    """Implements optix.user.v1.UserService on top of the domain UserService."""

    def __init__(self, service: UserService, proxies: TrustedProxies) -> None:
        self._service = service
        self._proxies = proxies

    def _address(self, context: Context) -> str:
        return client_address(context.peer(), context.invocation_metadata(), self._proxies)

    async def Register(
        self, request: user_service_pb2.RegisterRequest, context: Context
    ) -> user_service_pb2.RegisterResponse:
        """Create an account and return it with tokens."""
        profile, pair = await self._service.register(
            request.email,
            request.password,
            request.display_name,
            request.time_zone,
            self._address(context),
        )
        return user_service_pb2.RegisterResponse(
            user=convert.user(profile), tokens=convert.token_pair(pair)
        )

    async def Login(
        self, request: user_service_pb2.LoginRequest, context: Context
    ) -> user_service_pb2.LoginResponse:
        """Sign in: tokens, or an MFA challenge."""
        result = await self._service.login(request.email, request.password, self._address(context))
        if isinstance(result, MfaChallenge):
            return user_service_pb2.LoginResponse(mfa_challenge=convert.mfa_challenge(result))
        return user_service_pb2.LoginResponse(tokens=convert.token_pair(result))

    async def CompleteMfaLogin(
        self, request: user_service_pb2.CompleteMfaLoginRequest, context: Context
    ) -> user_service_pb2.CompleteMfaLoginResponse:
        """Redeem an MFA challenge."""
        pair = await self._service.complete_mfa_login(
            request.challenge_id, _factor(request), self._address(context)
        )
        return user_service_pb2.CompleteMfaLoginResponse(tokens=convert.token_pair(pair))

    async def RefreshToken(
        self, request: user_service_pb2.RefreshTokenRequest, context: Context
    ) -> user_service_pb2.RefreshTokenResponse:
        """Rotate a refresh token."""
        pair = await self._service.refresh(request.refresh_token)
        return user_service_pb2.RefreshTokenResponse(tokens=convert.token_pair(pair))

    async def Logout(
        self, request: user_service_pb2.LogoutRequest, context: Context
    ) -> user_service_pb2.LogoutResponse:
        """Revoke the session of a refresh token."""
        await self._service.logout(current_user_id(), request.refresh_token)
        return user_service_pb2.LogoutResponse()

    async def GetMe(
        self, request: user_service_pb2.GetMeRequest, context: Context
    ) -> user_service_pb2.GetMeResponse:
        """The signed-in user."""
        profile = await self._service.get_me(current_user_id())
        return user_service_pb2.GetMeResponse(user=convert.user(profile))

    async def UpdateMe(
        self, request: user_service_pb2.UpdateMeRequest, context: Context
    ) -> user_service_pb2.UpdateMeResponse:
        """Update the masked profile fields."""
        updated = await self._service.update_me(
            current_user_id(), convert.profile_update(request), self._address(context)
        )
        return user_service_pb2.UpdateMeResponse(
            user=convert.user(updated.profile),
            webhook_signing_secret=updated.webhook_signing_secret,
        )

    async def ChangePassword(
        self, request: user_service_pb2.ChangePasswordRequest, context: Context
    ) -> user_service_pb2.ChangePasswordResponse:
        """Change the password; other sessions end."""
        pair = await self._service.change_password(
            current_user_id(),
            request.current_password,
            request.new_password,
            self._address(context),
        )
        return user_service_pb2.ChangePasswordResponse(tokens=convert.token_pair(pair))

    async def SetupMfa(
        self, request: user_service_pb2.SetupMfaRequest, context: Context
    ) -> user_service_pb2.SetupMfaResponse:
        """Start TOTP enrolment."""
        setup = await self._service.setup_mfa(current_user_id())
        return user_service_pb2.SetupMfaResponse(secret=setup.secret, otpauth_uri=setup.otpauth_uri)

    async def ConfirmMfa(
        self, request: user_service_pb2.ConfirmMfaRequest, context: Context
    ) -> user_service_pb2.ConfirmMfaResponse:
        """Enable MFA with a first code."""
        codes = await self._service.confirm_mfa(
            current_user_id(), request.totp_code, self._address(context)
        )
        return user_service_pb2.ConfirmMfaResponse(recovery_codes=codes)

    async def DisableMfa(
        self, request: user_service_pb2.DisableMfaRequest, context: Context
    ) -> user_service_pb2.DisableMfaResponse:
        """Disable MFA with a current code."""
        await self._service.disable_mfa(current_user_id(), _factor(request), self._address(context))
        return user_service_pb2.DisableMfaResponse()

    async def GetJwks(
        self, request: user_service_pb2.GetJwksRequest, context: Context
    ) -> user_service_pb2.GetJwksResponse:
        """The public signing keys."""
        jwks = self._service.jwks()
        return user_service_pb2.GetJwksResponse(
            keys=[user_pb2.JsonWebKey(**key) for key in jwks.keys],
            generate_time=timestamp(jwks.generate_time),
        )

    async def GetUserWebhook(
        self, request: user_service_pb2.GetUserWebhookRequest, context: Context
    ) -> user_service_pb2.GetUserWebhookResponse:
        """Internal: a user's default webhook and its secret, for allowed services only."""
        caller = current_principal()
        service = caller.subject if caller.kind is PrincipalKind.SERVICE else None
        webhook = await self._service.user_webhook(service, request.name)
        return convert.user_webhook(webhook)
