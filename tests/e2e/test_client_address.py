"""Behind the real Envoy, sign-in limits count each client, not the edge: an attacker locking
out its own address leaves other clients of the same edge signing in."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from optix.user.v1 import user_service_pb2
from optix_server.user.config import UserSettings
from tests.e2e.accounts import PASSWORD, new_email
from tests.e2e.grpcweb import GRPC_WEB, call, frame
from tests.e2e.stack import Edge, envoy, envoy_env, free_port, optix_server, render_envoy_config

LOGIN = "/optix.user.v1.UserService/Login"
REGISTER = "/optix.user.v1.UserService/Register"
OK, RESOURCE_EXHAUSTED, UNAUTHENTICATED = 0, 8, 16
# Loopback is a /8 on Linux: each of these is its own client address towards the edge.
ATTACKER, VICTIM, BYSTANDER = "127.0.0.7", "127.0.0.8", "127.0.0.9"
# The real limits; only bcrypt is cheapened, so ~50 failed sign-ins take no time.
LIMITS = UserSettings()


@pytest.fixture(scope="module")
def guarded_edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    """Envoy in front of its own user service, so the lockout below touches no other test."""
    var_dir: Path = tmp_path_factory.mktemp("optix-var-limits")
    env = {"OPTIX_USER_BCRYPT_COST": "4", "OPTIX_SERVICES": "user"}
    with optix_server(var_dir, env) as backend:
        listen, admin = free_port(), free_port()
        config = render_envoy_config(
            tmp_path_factory.mktemp("envoy-limits") / "envoy.yaml",
            envoy_env(backend.address, listen, admin),
        )
        with envoy(config, listen, admin) as running:
            yield running


def _client(edge: Edge, source: str) -> httpx.Client:
    """A grpc-web client whose TCP connections to the edge come from `source`."""
    transport = httpx.HTTPTransport(local_address=source)
    return httpx.Client(base_url=edge.url, transport=transport, timeout=10.0)


def _login_status(client: httpx.Client, email: str, password: str) -> int | None:
    request = user_service_pb2.LoginRequest(email=email, password=password)
    return call(client, LOGIN, frame(request.SerializeToString())).grpc_status


def _login(client: httpx.Client, email: str, password: str) -> user_service_pb2.LoginResponse:
    """A sign-in that must succeed, decoded from its grpc-web data frame."""
    request = user_service_pb2.LoginRequest(email=email, password=password)
    response = client.post(
        LOGIN,
        content=frame(request.SerializeToString()),
        headers={"content-type": GRPC_WEB, "x-grpc-web": "1"},
    )
    assert response.status_code == 200, response.text
    # A refusal comes as trailers only (status in the headers), a success as a data frame.
    refused = (response.headers.get("grpc-status"), response.headers.get("grpc-message"))
    assert response.content[:1] == b"\x00", f"sign-in refused: {refused}"
    _flag, length = struct.unpack(">BI", response.content[:5])
    return user_service_pb2.LoginResponse.FromString(response.content[5 : 5 + length])


def test_an_attacker_locks_out_only_its_own_address(guarded_edge: Edge) -> None:
    victim = new_email("victim")
    with _client(guarded_edge, BYSTANDER) as bystander:
        request = user_service_pb2.RegisterRequest(email=victim, password=PASSWORD)
        assert call(bystander, REGISTER, frame(request.SerializeToString())).grpc_status == OK
    per_pair = LIMITS.login_failures_per_account_and_address
    per_address = LIMITS.login_failures_per_address
    # Under every pair limit: the address limit is the one this attack runs into.
    accounts = [victim] + [new_email("target") for _ in range(per_address // per_pair)]
    with _client(guarded_edge, ATTACKER) as attacker:
        for attempt in range(per_address):
            email = accounts[attempt // per_pair]
            assert _login_status(attacker, email, "wrong password guess") == UNAUTHENTICATED
        # A fresh account, so only the per-address count can refuse.
        assert _login_status(attacker, accounts[-1], "wrong password guess") == RESOURCE_EXHAUSTED
        # The attacker's address is locked even for the right password...
        assert _login_status(attacker, victim, PASSWORD) == RESOURCE_EXHAUSTED
    # ...and the victim, through the same edge from elsewhere, is not.
    with _client(guarded_edge, VICTIM) as client:
        reply = _login(client, victim, PASSWORD)
    assert reply.tokens.access_token
