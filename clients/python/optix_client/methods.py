"""Which RPCs are public (sent without a token) and which stream (no default deadline)."""

from __future__ import annotations

# Sign-in RPCs and health probes: adding a token would be pointless (and recursive for refresh).
PUBLIC_METHODS: frozenset[str] = frozenset(
    {
        "/optix.user.v1.UserService/Register",
        "/optix.user.v1.UserService/Login",
        "/optix.user.v1.UserService/CompleteMfaLogin",
        "/optix.user.v1.UserService/RefreshToken",
        "/optix.user.v1.UserService/GetJwks",
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/Watch",
    }
)


def method_name(method: str | bytes) -> str:
    """The /package.Service/Method path as text (grpc passes bytes in aio, str in sync)."""
    return method.decode() if isinstance(method, bytes) else method
