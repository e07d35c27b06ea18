"""The access log of a real `optix serve`: one JSON line per RPC on stderr, with method, status,
duration, peer and caller, and never a password or token."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest

from optix.marketdata.v1 import marketdata_service_pb2, marketdata_service_pb2_grpc
from optix.user.v1 import user_service_pb2, user_service_pb2_grpc
from optix_server.infra.access_log import AccessLog, _Call

PASSWORD = "zebra-Quokka-7731-access-log"
USER_SERVICE = "/optix.user.v1.UserService"
STREAM_METHOD = "/optix.marketdata.v1.MarketDataService/StreamQuotes"
WAIT_S = 30


class Server:
    """A running `optix serve` child whose stderr lines are read as JSON events."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []

    async def next_event(self) -> dict[str, Any]:
        """The next JSON line the server writes (non-JSON lines are kept, skipped)."""
        assert self.proc.stderr is not None
        while True:
            raw = await self.proc.stderr.readline()
            if not raw:
                raise AssertionError("optix serve exited:\n" + "\n".join(self.lines[-20:]))
            line = raw.decode().rstrip("\n")
            self.lines.append(line)
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                return event

    async def rpc_lines(self, count: int) -> list[dict[str, Any]]:
        """The next `count` access-log lines."""
        found: list[dict[str, Any]] = []
        while len(found) < count:
            event = await self.next_event()
            if event.get("event") == "rpc":
                found.append(event)
        return found


@asynccontextmanager
async def optix_serve(tmp_path: Path, **env: str) -> AsyncIterator[tuple[Server, str]]:
    """`optix serve --port 0` with JSON logs; yields it and its address once serving."""
    child_env = {
        **os.environ,
        "OPTIX_LOG_FORMAT": "json",
        "OPTIX_VAR_DIR": str(tmp_path / "var"),
        "OPTIX_USER_BCRYPT_COST": "4",
        "OPTIX_SHUTDOWN_GRACE_SECONDS": "1",
        **env,
    }
    child_env.pop("OPTIX_DATABASE_URL", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "optix_server.cli",
        "serve",
        "--port",
        "0",
        env=child_env,
        stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
    )
    server = Server(proc)
    try:
        async with asyncio.timeout(WAIT_S):
            while (event := await server.next_event()).get("event") != "serving":
                pass
        yield server, str(event["address"])
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        assert proc.stderr is not None
        async with asyncio.timeout(WAIT_S):
            rest = await proc.stderr.read()
            await proc.wait()
        server.lines.extend(rest.decode().splitlines())


async def test_each_rpc_logs_one_line_without_secrets(tmp_path: Path) -> None:
    async with (
        optix_serve(tmp_path, OPTIX_ACCESS_LOG="all") as (server, address),
        grpc.aio.insecure_channel(address) as channel,
    ):
        users = user_service_pb2_grpc.UserServiceStub(channel)
        registered = await users.Register(
            user_service_pb2.RegisterRequest(email="log@example.com", password=PASSWORD)
        )
        token = registered.tokens.access_token
        assert token
        auth = (("authorization", f"Bearer {token}"),)
        me = await users.GetMe(user_service_pb2.GetMeRequest(), metadata=auth)
        with pytest.raises(grpc.aio.AioRpcError) as anonymous:
            await users.GetMe(user_service_pb2.GetMeRequest())
        assert anonymous.value.code() is grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as invalid:
            await users.Register(
                user_service_pb2.RegisterRequest(email="not an email", password=PASSWORD)
            )
        assert invalid.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        quotes = marketdata_service_pb2_grpc.MarketDataServiceStub(channel)
        stream = quotes.StreamQuotes(
            marketdata_service_pb2.StreamQuotesRequest(symbols=["AAPL"]), metadata=auth
        )
        await stream.read()
        # The stream's line is written when it ends: here, when its client goes away.
        stream.cancel()
        async with asyncio.timeout(WAIT_S):
            lines = await server.rpc_lines(5)

    by_method = [(line["method"], line["status"]) for line in lines]
    assert by_method[:4] == [
        (f"{USER_SERVICE}/Register", "OK"),
        (f"{USER_SERVICE}/GetMe", "OK"),
        (f"{USER_SERVICE}/GetMe", "UNAUTHENTICATED"),
        (f"{USER_SERVICE}/Register", "INVALID_ARGUMENT"),
    ]
    assert by_method[4] == (STREAM_METHOD, "CANCELLED")
    for line in lines:
        assert isinstance(line["duration_ms"], int | float) and line["duration_ms"] >= 0
        assert line["peer"].startswith(("ipv4:127.0.0.1:", "ipv6:"))
        assert line["client"] in ("127.0.0.1", "::1/64")
    user_id = lines[1]["user"]
    assert user_id and me.user.name.endswith(user_id)
    assert lines[4]["user"] == user_id
    assert "user" not in lines[0] and "user" not in lines[2] and "service" not in lines[2]
    everything = "\n".join(server.lines)
    assert PASSWORD not in everything
    assert token not in everything
    assert token.split(".")[-1] not in everything  # not even the signature


async def test_errors_mode_logs_only_failed_calls(tmp_path: Path) -> None:
    async with (
        optix_serve(tmp_path, OPTIX_ACCESS_LOG="errors") as (server, address),
        grpc.aio.insecure_channel(address) as channel,
    ):
        users = user_service_pb2_grpc.UserServiceStub(channel)
        await users.Register(
            user_service_pb2.RegisterRequest(email="ok@example.com", password=PASSWORD)
        )
        with pytest.raises(grpc.aio.AioRpcError):
            await users.GetMe(user_service_pb2.GetMeRequest())
        async with asyncio.timeout(WAIT_S):
            (line,) = await server.rpc_lines(1)
    assert (line["method"], line["status"]) == (f"{USER_SERVICE}/GetMe", "UNAUTHENTICATED")
    assert not [entry for entry in server.lines if '"event": "rpc"' in entry][1:]


class _Peer:
    def peer(self) -> str:
        return "ipv4:10.0.0.1:5000"

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("x-forwarded-for", "203.0.113.9"),)


class _Lines:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def info(self, event: str, **fields: Any) -> None:
        self.events.append({"event": event, **fields})


@pytest.mark.parametrize(("chance", "logged"), [(0.24, True), (0.25, False)])
def test_sample_keeps_a_fraction_of_ok_calls_and_every_failure(chance: float, logged: bool) -> None:
    lines = _Lines()
    access = AccessLog("all", 0.25, logger=lines, chance=lambda: chance, clock=lambda: 1.0)  # type: ignore[arg-type]
    context: Any = _Peer()
    access.ended("/a.B/Ok", grpc.StatusCode.OK, 1.0, context, _Call())
    access.ended("/a.B/Bad", grpc.StatusCode.NOT_FOUND, 1.0, context, _Call())
    assert [e["method"] for e in lines.events] == [*(["/a.B/Ok"] if logged else []), "/a.B/Bad"]


def test_off_installs_no_interceptor() -> None:
    assert not AccessLog("off").enabled
    with pytest.raises(ValueError):
        AccessLog("loud")
