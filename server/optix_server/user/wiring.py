"""Wires the user slice: storage, hashing, tokens, MFA and limits into a ServiceModule."""

from __future__ import annotations

from optix.user.v1 import user_service_pb2_grpc
from optix_server.infra.crypto import SecretBox, derive_key, load_or_create_pepper
from optix_server.infra.fallback_cache import FallbackCache
from optix_server.infra.logging import get_logger
from optix_server.infra.module import Dependencies, ServiceModule
from optix_server.infra.passwords import PasswordHasher, PasswordHasherConfig, PasswordPolicy
from optix_server.infra.ratelimit import FailureLimiter
from optix_server.user.config import UserSettings
from optix_server.user.guard import AttemptGuard, KnownClients
from optix_server.user.maintenance import Janitor
from optix_server.user.mfa import MfaManager
from optix_server.user.repository import UserRepository
from optix_server.user.service import UserService
from optix_server.user.servicer import UserServicer
from optix_server.user.sessions import SessionManager
from optix_server.user.validation import TimeZones
from optix_server.user.webhook_secrets import WebhookSecrets

log = get_logger(__name__)

FULL_NAME = "optix.user.v1.UserService"
_PREFIX = f"/{FULL_NAME}/"
# Callable without a token; every other UserService RPC needs a signed-in user.
PUBLIC_METHODS = frozenset(
    _PREFIX + name for name in ("Register", "Login", "CompleteMfaLogin", "RefreshToken", "GetJwks")
)


def create_module(deps: Dependencies, *, settings: UserSettings | None = None) -> ServiceModule:
    """The user ServiceModule; tests may inject settings (the clock comes with `deps`)."""
    settings = settings or UserSettings.from_env(deps.settings.env)
    clock = deps.clock
    authority = deps.tokens
    pepper = settings.pepper
    if pepper is None:
        path = deps.settings.var_dir / "keys" / "pepper"
        # Fine for one process; replicas must share one pepper, or passwords stop verifying.
        log.warning("OPTIX_USER_PEPPER is not set; using the pepper file", path=str(path))
        pepper = load_or_create_pepper(path)
    hasher = PasswordHasher(
        PasswordHasherConfig(
            pepper=derive_key(pepper, "optix password prehash v1"),
            cost=settings.bcrypt_cost,
            max_workers=settings.bcrypt_workers,
            max_pending=max(settings.bcrypt_max_pending, settings.bcrypt_workers),
        )
    )
    repository = UserRepository(deps.database)
    revocations = deps.revocations
    limits = FallbackCache(deps.cache)
    service = UserService(
        repository=repository,
        hasher=hasher,
        policy=PasswordPolicy(),
        sessions=SessionManager(
            repository,
            authority,
            clock,
            access_ttl=settings.access_token_ttl,
            refresh_ttl=settings.refresh_token_ttl,
            revocations=revocations,
        ),
        mfa=MfaManager(
            repository,
            SecretBox(derive_key(pepper, "optix totp secret v1")),
            code_key=derive_key(pepper, "optix recovery code v1"),
            clock=clock,
            issuer=settings.mfa_issuer,
            recovery_code_count=settings.recovery_code_count,
        ),
        # Sign-in limits keep counting (per process) while Redis is away: logins go on.
        guard=AttemptGuard(
            FailureLimiter(limits, clock),
            KnownClients(limits, settings.known_client_ttl),
            settings,
        ),
        authority=authority,
        zones=TimeZones(),
        clock=clock,
        challenge_ttl=settings.mfa_challenge_ttl,
        attempts_per_challenge=settings.mfa_attempts_per_challenge,
        webhook_secrets=WebhookSecrets(
            SecretBox(derive_key(pepper, "optix user webhook secret v1"))
        ),
        webhook_readers=settings.webhook_readers,
    )
    # Per-address limits need the real client behind the edge: proxies are a process setting.
    servicer = UserServicer(service, deps.settings.trusted_proxies)
    janitor = Janitor(repository, clock, deps.lifecycle)

    async def on_start() -> None:
        # The dummy hash must exist before the first unknown-email login, or that one is slower.
        await hasher.warm_up()
        janitor.start()

    async def on_stop() -> None:
        await janitor.stop()
        hasher.close()

    return ServiceModule(
        name="user",
        full_name=FULL_NAME,
        register=lambda server: user_service_pb2_grpc.add_UserServiceServicer_to_server(
            servicer, server
        ),
        public_methods=PUBLIC_METHODS,
        on_start=on_start,
        on_stop=on_stop,
    )
