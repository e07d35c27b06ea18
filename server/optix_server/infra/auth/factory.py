"""Builds the process's TokenAuthority and AuthInterceptor from Settings."""

from __future__ import annotations

from collections.abc import Iterable

from optix_server.infra.auth.clock import Clock, SystemClock
from optix_server.infra.auth.interceptor import AuthInterceptor
from optix_server.infra.auth.keys import load_keyring
from optix_server.infra.auth.revocation import SessionRevocations
from optix_server.infra.auth.revocation_log import DatabaseRevocationLog
from optix_server.infra.auth.session_watch import SessionWatch
from optix_server.infra.auth.tokens import TokenAuthority
from optix_server.infra.db import Database
from optix_server.infra.pubsub import PubSub
from optix_server.infra.settings import Settings


def build_token_authority(settings: Settings, clock: Clock | None = None) -> TokenAuthority:
    """The authority signing and verifying tokens with the configured keys."""
    clock = clock or SystemClock()
    keyring = load_keyring(settings.auth, clock, settings.var_dir)
    return TokenAuthority(keyring, settings.auth, clock)


def build_session_revocations(
    settings: Settings, database: Database, pubsub: PubSub, clock: Clock
) -> SessionRevocations:
    """The deny-list of ended sessions, recorded in the database and mirrored in memory;
    endings are announced on `pubsub` so every replica knows at once (and its SessionWatch
    ends the session's open streams)."""
    return SessionRevocations(
        DatabaseRevocationLog(database), settings.auth.max_token_lifetime, pubsub, clock=clock
    )


def build_auth_interceptor(
    authority: TokenAuthority,
    public_methods: Iterable[str],
    revocations: SessionRevocations | None = None,
    session_watch: SessionWatch | None = None,
) -> AuthInterceptor:
    """The interceptor guarding every RPC except `public_methods`, health and reflection."""
    return AuthInterceptor(
        authority,
        public_methods=frozenset(public_methods),
        revocations=revocations,
        session_watch=session_watch,
    )
