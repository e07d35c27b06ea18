"""Two real `optix serve` replicas behind one Envoy (both endpoints of every cluster), on a
fresh PostgreSQL database (through a proxy the test can cut) and a private Redis (which the
test can kill), driven through the Python SDK by 20 unary callers (reads and idempotent
writes) and 10 quote streams that reconnect on UNAVAILABLE, while replicas restart, die or
start, and dependencies go away. Each test prints the figures it measured (`pytest -s`)."""

from __future__ import annotations

import asyncio
import math
import signal
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2_grpc
from redis.asyncio import Redis
from sqlalchemy.engine import make_url

from optix.alert.v1 import alert_service_pb2, alert_service_pb2_grpc
from optix.brokerage.v1 import brokerage_service_pb2, brokerage_service_pb2_grpc
from optix.marketdata.v1 import marketdata_service_pb2 as md
from optix.marketdata.v1 import marketdata_service_pb2_grpc
from optix.user.v1 import user_service_pb2, user_service_pb2_grpc
from optix.watchlist.v1 import watchlist_pb2, watchlist_service_pb2, watchlist_service_pb2_grpc
from optix_client import OptixError
from optix_server.infra.db import Database, alembic_config
from optix_server.marketdata.feed import OWNER_KEY
from tests.e2e.stack import Edge, envoy, envoy_env, free_port, render_envoy_config
from tests.production.processes import (
    REFUSED,
    HealthTimeline,
    PrivateRedis,
    Replica,
    ThreadedProxy,
    check_health,
    port_accepts,
    probe_channel,
    probe_until,
    run_optix,
    shared_secrets,
    spawn_serve,
    wait_edge_sees,
)
from tests.production.traffic import (
    Account,
    Call,
    Traffic,
    new_account,
    register,
    sdk_client,
    traffic,
)
from tests.support.backends import fresh_database_url

T = TypeVar("T")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.redis,
    # The first test also pays for the module's stack (two replicas, Envoy, migrations).
    pytest.mark.timeout(180),
    pytest.mark.asyncio(loop_scope="module"),
]

# Envoy health-checks every replica this often; two failed checks take one out of rotation, so
# a replica must keep serving (drain) for longer than two intervals after SIGTERM.
HEALTH_CHECK_INTERVAL_S = 1.0
DRAIN_S = 2 * HEALTH_CHECK_INTERVAL_S + 2.0
GRACE_S = 5.0
FEED_OWNER_LEASE_S = 3.0
TICK_RATE = 10
UNARY_CLIENTS = 20
STREAMS = 10
RESUME_BOUND_S = 1.0
OUTAGE_S = 10.0
# After a feed owner dies no replica may tick before its hold expires (>= half the lease is
# left: it holds for 3/4 and renews every 1/4): a tick this soon after the kill was the dead
# owner's.
DEAD_OWNER_TICKS_S = 0.5
SERVICE_NAMES = (
    user_service_pb2.DESCRIPTOR.services_by_name["UserService"].full_name,
    md.DESCRIPTOR.services_by_name["MarketDataService"].full_name,
    watchlist_service_pb2.DESCRIPTOR.services_by_name["WatchlistService"].full_name,
    brokerage_service_pb2.DESCRIPTOR.services_by_name["BrokerageService"].full_name,
    alert_service_pb2.DESCRIPTOR.services_by_name["AlertService"].full_name,
)
HEALTH_NAMES = ("", *SERVICE_NAMES)
FEED_OWNER_METRIC = "optix_marketdata_feed_owner"
START_HEALTH_ANSWERS = (REFUSED, "NOT_SERVING", "SERVING")


def report(title: str, figures: Mapping[str, object]) -> None:
    """Print a test's figures (shown with `pytest -s`)."""
    print(f"\n[production figures] {title}")
    for key, value in figures.items():
        print(f"  {key}: {value}")


def replica_env(database_url: str, redis_url: str, secrets: Mapping[str, str]) -> dict[str, str]:
    """What every replica of the harness shares: the database, Redis (one prefix for this
    harness), keys, the simulated market's epoch and the fault-related timings."""
    epoch = (datetime.now(UTC) - timedelta(minutes=1)).replace(microsecond=0).isoformat()
    return {
        "OPTIX_DATABASE_URL": database_url,
        "OPTIX_REDIS_URL": redis_url,
        "OPTIX_REDIS_PREFIX": f"optix-prod-{uuid.uuid4().hex[:10]}:",
        "OPTIX_LOG_FORMAT": "json",
        "OPTIX_DRAIN_SECONDS": str(DRAIN_S),
        "OPTIX_SHUTDOWN_GRACE_SECONDS": str(GRACE_S),
        "OPTIX_MARKETDATA_FEED_OWNER_LEASE_SECONDS": str(FEED_OWNER_LEASE_S),
        "OPTIX_MARKETDATA_SIM_EPOCH": epoch,
        "OPTIX_MARKETDATA_TICK_RATE": str(TICK_RATE),
        "OPTIX_USER_BCRYPT_COST": "4",
        # Every caller reaches the replicas from 127.0.0.1 through the edge.
        "OPTIX_USER_REGISTRATIONS_PER_ADDRESS": "10000",
        "OPTIX_WATCHLIST_MAX_LISTS": "100000",
        "OPTIX_TRUSTED_PROXIES": "127.0.0.1/32,::1/128",
        **secrets,
    }


def make_replica(
    env: Mapping[str, str], tmp: Path, name: str, port: int, metrics_port: int | None = None
) -> Replica:
    """A replica with the shared settings `env` and a var/ of its own under `tmp`."""
    var = tmp / f"var-{name}-{uuid.uuid4().hex[:6]}"
    return Replica(name, port, {**env, "OPTIX_VAR_DIR": str(var)}, metrics_port)


@dataclass
class Harness:
    """The module's stack: replicas A and B, the edge, the private Redis, the database proxy
    and the accounts the traffic signs in as."""

    a: Replica
    b: Replica
    edge: Edge
    redis: PrivateRedis
    db: ThreadedProxy
    env: dict[str, str]
    tmp: Path
    unary_accounts: list[Account]
    stream_accounts: list[Account]

    @property
    def replicas(self) -> tuple[Replica, Replica]:
        """A and B."""
        return (self.a, self.b)

    def traffic(self) -> AbstractAsyncContextManager[Traffic]:
        """20 unary callers and 10 quote streams through the edge."""
        return traffic(self.edge.address, self.unary_accounts, self.stream_accounts)

    def replica(self, name: str, port: int, metrics_port: int | None = None) -> Replica:
        """A replica with the shared settings and a var/ of its own (not started)."""
        return make_replica(self.env, self.tmp, name, port, metrics_port)

    async def restore(self) -> None:
        """Bring back whatever is down (database proxy, Redis, replicas) and wait until the
        edge has both replicas in rotation in every cluster."""
        if not self.db.up:
            await self.db.start()
        if not self.redis.running:
            await self.redis.start()
        for replica in self.replicas:
            if not replica.running:
                replica.start()
        await asyncio.gather(*(r.wait_serving() for r in self.replicas))
        await asyncio.gather(
            *(
                wait_edge_sees(self.edge.admin_url, r.address, healthy=True, within=30)
                for r in self.replicas
            )
        )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def harness(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Harness]:
    """The stack, shared by the module's tests (each leaves it whole, or restore() mends it)."""
    tmp = tmp_path_factory.mktemp("production")
    async with fresh_database_url("postgres", tmp) as url:
        real = make_url(url)
        db = ThreadedProxy(real.host or "127.0.0.1", real.port or 5432)
        await db.start()
        redis = PrivateRedis(free_port())
        await redis.start()
        proxied = real.set(port=db.port).render_as_string(hide_password=False)
        env = replica_env(proxied, redis.url, shared_secrets())
        replicas: list[Replica] = []
        try:
            migrated = await asyncio.to_thread(
                run_optix, ["migrate"], {**env, "OPTIX_VAR_DIR": str(tmp / "var-migrate")}
            )
            assert migrated.returncode == 0, migrated.stderr
            replicas = [
                make_replica(env, tmp, name, free_port(), metrics_port=free_port())
                for name in ("A", "B")
            ]
            for replica in replicas:
                replica.start()
            await asyncio.gather(*(r.wait_serving() for r in replicas))
            listen, admin = free_port(), free_port()
            upstreams = ",".join(r.address for r in replicas)
            config = await asyncio.to_thread(
                render_envoy_config,
                tmp / "envoy.yaml",
                envoy_env(
                    upstreams,
                    listen,
                    admin,
                    OPTIX_ENVOY_HEALTH_CHECK_INTERVAL_S=str(HEALTH_CHECK_INTERVAL_S),
                    # One client address (loopback) carries all 30 callers.
                    OPTIX_ENVOY_CLIENT_RATE_LIMIT_RPS="5000",
                    OPTIX_ENVOY_CLIENT_RATE_LIMIT_BURST="10000",
                ),
            )
            with envoy(config, listen, admin) as edge:
                unary = [new_account(f"unary{i}") for i in range(UNARY_CLIENTS)]
                streaming = [new_account(f"stream{i}") for i in range(STREAMS)]
                await register(edge.address, [*unary, *streaming])
                stack = Harness(
                    replicas[0], replicas[1], edge, redis, db, env, tmp, unary, streaming
                )
                await stack.restore()
                yield stack
        finally:
            await asyncio.gather(*(r.stop(quick=True) for r in replicas))
            report(
                "teardown", {f"{r.name} stopped in (s)": round(r.stop_seconds, 2) for r in replicas}
            )
            await redis.kill()
            await db.close()


async def warm(load: Traffic) -> None:
    """Wait until every stream ticks and the unary callers are under way."""
    ticking = await load.wait_live(time.monotonic(), within=20)
    assert all(t is not None for t in ticking.values()), f"streams not ticking: {ticking}"
    await load.wait_calls(2 * UNARY_CLIENTS, within=20)


def resume_delays(load: Traffic, since: float) -> list[float | None]:
    """Per UNAVAILABLE stream ending since `since`: seconds until its next connection spoke."""
    return [
        e.resume_delay
        for s in load.streams
        for e in s.endings
        if e.code == "UNAVAILABLE" and e.ended >= since
    ]


def rounded(values: Sequence[float | None], digits: int = 3) -> list[float | None]:
    """`values` rounded, for the figures."""
    return [None if v is None else round(v, digits) for v in values]


def described(calls: Sequence[Call], limit: int = 10) -> list[str]:
    """The first failed calls, readable (for assertion messages)."""
    return [f"{c.method} {c.code} {c.message}" for c in calls if c.code != "OK"][:limit]


async def rolling_step(harness: Harness, replica: Replica) -> dict[str, object]:
    """SIGTERM `replica`, wait for it to leave the edge's rotation and exit, start it again on
    its port, probe its health from the moment it starts, and wait until the edge has it back."""
    admin = harness.edge.admin_url
    terminated = time.monotonic()
    replica.signal(signal.SIGTERM)
    out = await wait_edge_sees(admin, replica.address, healthy=False, within=DRAIN_S + 10)
    status = await replica.wait_exit(DRAIN_S + GRACE_S + 15)
    exited = time.monotonic() - terminated
    assert status == 0, f"{replica.name} exited {status}:\n{replica.logs.tail()}"
    replica.start()
    timelines = await replica.wait_serving(services=HEALTH_NAMES)
    unexpected = {
        name or "<overall>": bad
        for name, timeline in timelines.items()
        if (bad := timeline.unexpected(START_HEALTH_ANSWERS))
    }
    assert not unexpected, f"{replica.name} answered health oddly while starting: {unexpected}"
    overall = timelines[""]
    back = await wait_edge_sees(admin, replica.address, healthy=True, within=30)
    assert out < DRAIN_S, (
        f"the edge took {replica.name} out of rotation {out:.2f} s after SIGTERM, after its"
        f" {DRAIN_S} s drain: calls would have met a stopped replica"
    )
    return {
        "out of rotation after SIGTERM (s)": round(out, 2),
        "exited after SIGTERM (s)": round(exited, 2),
        "SERVING after start (s)": round(overall.first("SERVING") or math.nan, 2),
        "health answers while starting": dict(overall.counts()),
        "back in rotation after SERVING (s)": round(back, 2),
    }


async def test_a_rolling_restart_fails_no_call_and_streams_resume_within_a_second(
    harness: Harness,
) -> None:
    await harness.restore()
    figures: dict[str, object] = {}
    async with harness.traffic() as load:
        await warm(load)
        began = time.monotonic()
        for replica in harness.replicas:
            figures[f"replica {replica.name}"] = await rolling_step(harness, replica)
        done = time.monotonic()
        ticking = await load.wait_live(done, within=10)
        await load.wait_calls(3 * UNARY_CLIENTS, within=20)
        await load.halt()
        lost = await load.lost_writes()
    calls = load.calls_between(began, math.inf)
    failures = load.failures(load.calls)
    delays = resume_delays(load, began)
    measured = [d for d in delays if d is not None]
    endings = load.stream_endings()
    figures.update(
        {
            "unary calls during the restart (all)": f"{len(calls)} ({len(load.calls)})",
            "failed unary calls by code": dict(failures),
            "stream endings by code": dict(endings),
            "stream UNAVAILABLE endings": len(delays),
            "max stream resume delay (s)": round(max(measured, default=0.0), 3),
            "median stream resume delay (s)": round(statistics.median(measured or [0.0]), 3),
            "streams never resumed": sum(d is None for d in delays),
            "snapshots resent on reconnect (same sequence)": sum(s.resent for s in load.streams),
            "duplicate/out-of-order sequences": load.stream_violations()[:5] or 0,
            "OK writes missing afterwards": len(lost),
        }
    )
    report("rolling restart (SIGTERM A, start A, SIGTERM B, start B)", figures)
    assert not failures, f"failed calls: {dict(failures)}: {described(load.calls)}"
    assert set(endings) <= {"UNAVAILABLE"}, f"streams ended otherwise: {dict(endings)}"
    for stream in load.streams:
        assert stream.endings_between(began, done), f"stream {stream.index} never moved"
    assert all(d is not None for d in delays), f"streams that never resumed: {rounded(delays)}"
    assert max(measured) <= RESUME_BOUND_S, f"resume delays (s): {rounded(delays)}"
    assert not load.stream_violations(), load.stream_violations()
    assert all(t is not None for t in ticking.values()), f"not ticking after: {ticking}"
    assert not lost, lost


async def logged_out_session(target: str) -> tuple[str, str]:
    """Sign a fresh account in, then log that session out: its (access, refresh) tokens."""
    account = new_account("gone")
    await register(target, [account])
    async with sdk_client(target) as client:
        reply = await client.user.Login(
            user_service_pb2.LoginRequest(email=account.email, password=account.password)
        )
        access, refresh = reply.tokens.access_token, reply.tokens.refresh_token
        await client.user.Logout(
            user_service_pb2.LogoutRequest(refresh_token=refresh),
            metadata=(("authorization", f"Bearer {access}"),),
        )
    return access, refresh


async def session_refusals(targets: Sequence[str], access: str, refresh: str) -> list[str]:
    """How each target answers the ended session's access token (GetMe) and refresh token
    (RefreshToken): each answer's code name."""
    answers: list[str] = []
    for target in targets:
        async with sdk_client(target) as client:
            for attempt in (
                client.user.GetMe(
                    user_service_pb2.GetMeRequest(),
                    metadata=(("authorization", f"Bearer {access}"),),
                ),
                client.user.RefreshToken(
                    user_service_pb2.RefreshTokenRequest(refresh_token=refresh)
                ),
            ):
                try:
                    await attempt
                except OptixError as error:
                    answers.append(error.code.name)
                else:
                    answers.append("OK")
    return answers


async def logins_until(target: str, account: Account, end: float) -> list[str]:
    """Sign in (and call GetMe with the new token) about once a second until `end`: each
    attempt's outcome (OK or the failing code)."""
    outcomes: list[str] = []
    async with sdk_client(target) as client:
        for _ in range(int(OUTAGE_S * 4)):
            if time.monotonic() >= end:
                break
            try:
                reply = await client.user.Login(
                    user_service_pb2.LoginRequest(email=account.email, password=account.password)
                )
                await client.user.GetMe(
                    user_service_pb2.GetMeRequest(),
                    metadata=(("authorization", f"Bearer {reply.tokens.access_token}"),),
                )
            except OptixError as error:
                outcomes.append(error.code.name)
            else:
                outcomes.append("OK")
            await asyncio.sleep(min(1.0, max(0.0, end - time.monotonic())))
    return outcomes


SERVER_ERRORS = {"UNKNOWN", "INTERNAL"}


async def test_redis_killed_for_ten_seconds_and_back_empty(harness: Harness) -> None:
    await harness.restore()
    edge = harness.edge.address
    access, refresh = await logged_out_session(edge)
    before = await session_refusals([edge], access, refresh)
    assert before == ["UNAUTHENTICATED"] * 2, before
    signer = new_account("signer")
    await register(edge, [signer])
    async with harness.traffic() as load:
        await warm(load)
        killed = time.monotonic()
        await harness.redis.kill()
        logins = await logins_until(edge, signer, killed + OUTAGE_S)
        back = time.monotonic()
        await harness.redis.start()
        restarted = time.monotonic()
        ticking = await load.wait_live(restarted, within=30)
        settled = time.monotonic()
        await load.wait_calls(3 * UNARY_CLIENTS, within=20)
        await load.halt()
        lost = await load.lost_writes()
    after_session = await session_refusals(
        [edge, *(r.address for r in harness.replicas)], access, refresh
    )
    during = [c for c in load.calls if c.ended >= killed and c.started < restarted]
    after = load.calls_between(restarted, math.inf)
    after_settled = load.calls_between(settled, math.inf)
    stream_codes = load.stream_endings()
    server_errors = [c for c in load.calls if c.code in SERVER_ERRORS]
    measured = [t for t in ticking.values() if t is not None]
    report(
        "Redis killed (SIGKILL) for ~10 s, restarted empty",
        {
            "outage (s)": round(restarted - killed, 2),
            "unary calls during the outage": len(during),
            "failed during, by code": dict(load.failures(during)),
            "failed during, by method": dict(load.failures_by_method(during)),
            "failed after restart, by code": dict(load.failures(after)),
            "failed once every stream ticked again, by code": dict(load.failures(after_settled)),
            "UNKNOWN/INTERNAL calls": len(server_errors),
            "logins during the outage": dict(
                (code, logins.count(code)) for code in sorted(set(logins))
            ),
            "logged-out session after (GetMe, RefreshToken per target)": after_session,
            "stream endings by code": dict(stream_codes),
            "max time from Redis restart to every stream ticking (s)": round(
                max(measured, default=math.nan), 2
            ),
            "duplicate/out-of-order sequences": load.stream_violations()[:5] or 0,
            "OK writes missing afterwards": len(lost),
            "Redis outage lasted until logins stopped (s)": round(back - killed, 2),
        },
    )
    assert not server_errors, described(server_errors)
    assert not SERVER_ERRORS & set(stream_codes), dict(stream_codes)
    assert logins and set(logins) == {"OK"}, f"logins during the outage: {logins}"
    assert set(after_session) == {"UNAUTHENTICATED"}, after_session
    assert all(t is not None for t in ticking.values()), f"streams not ticking again: {ticking}"
    assert not load.failures(after_settled), described(after_settled)
    assert not load.stream_violations(), load.stream_violations()
    assert not lost, lost


async def test_postgres_stopped_for_ten_seconds(harness: Harness) -> None:
    await harness.restore()
    async with harness.traffic() as load:
        await warm(load)
        cut = time.monotonic()
        await harness.db.cut()
        await asyncio.sleep(OUTAGE_S)  # the outage itself: nothing to wait for but time
        await harness.db.start()
        restored = time.monotonic()
        await load.wait_calls(6 * UNARY_CLIENTS, within=30)
        await load.halt()
        lost = await load.lost_writes()
    before = [c for c in load.calls if c.ended < cut]
    during = [c for c in load.calls if c.ended >= cut and c.started < restored]
    after = load.calls_between(restored, math.inf)
    during_ok = sum(c.code == "OK" for c in during)
    stream_codes = load.stream_endings()
    written = sum(len(w.writes.created) for w in load.workers)
    report(
        "PostgreSQL stopped (proxy cut) for ~10 s",
        {
            "outage (s)": round(restored - cut, 2),
            "failed before, by code": dict(load.failures(before)),
            "unary calls during the outage (OK)": f"{len(during)} ({during_ok})",
            "failed during, by code": dict(load.failures(during)),
            "failed during, by method": dict(load.failures_by_method(during)),
            "unary calls after it is back": len(after),
            "failed after, by code": dict(load.failures(after)),
            "stream endings by code": dict(stream_codes),
            "watchlists created OK (all present afterwards)": f"{written} ({not lost})",
            "duplicate/out-of-order sequences": load.stream_violations()[:5] or 0,
        },
    )
    assert not load.failures(before), described(before)
    assert set(load.failures(during)) <= {"UNAVAILABLE"}, described(during)
    assert not load.failures(after), described(after)
    assert not SERVER_ERRORS & set(stream_codes), dict(stream_codes)
    assert not load.stream_violations(), load.stream_violations()
    assert not lost, lost


async def feed_owner(harness: Harness, within: float = 15.0) -> Replica:
    """The one replica whose metrics say it runs the market data feed."""
    deadline = time.monotonic() + within
    owners: list[Replica] = []
    while time.monotonic() < deadline:
        values = [await r.metric(FEED_OWNER_METRIC) for r in harness.replicas]
        owners = [r for r, v in zip(harness.replicas, values, strict=True) if v == 1.0]
        if len(owners) == 1:
            return owners[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"expected one feed owner, found {[r.name for r in owners]}")


async def wait_metric(replica: Replica, name: str, value: float, within: float) -> float | None:
    """Seconds until `replica`'s metric `name` reads `value` (None: not within `within`)."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        if await replica.metric(name) == value:
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    return None


async def just_renewed(harness: Harness, within: float = 10.0) -> float:
    """Wait until the feed owner has just renewed its lease (its TTL in Redis jumps back up);
    the seconds the lease then has left."""
    key = f"{harness.env['OPTIX_REDIS_PREFIX']}cache:{OWNER_KEY}"
    client = Redis.from_url(harness.redis.url)
    try:
        previous: int | None = None
        for _ in range(int(within / 0.005)):
            left = int(await client.pttl(key))
            if previous is not None and left > previous + 100:
                return left / 1000
            previous = left
            await asyncio.sleep(0.005)
    finally:
        await client.aclose()
    raise AssertionError(f"the feed owner did not renew its lease ({key}) within {within} s")


async def test_kill_9_of_the_feed_owner_hands_the_feed_over_within_its_lease(
    harness: Harness,
) -> None:
    await harness.restore()
    async with harness.traffic() as load:
        await warm(load)
        owner = await feed_owner(harness)
        survivor = next(r for r in harness.replicas if r is not owner)
        # The worst moment, and the one that decides whether "within the lease" holds: just
        # after the owner renewed its lease, so the whole lease is left to run out.
        lease_left = await just_renewed(harness)
        killed = time.monotonic()
        owner.signal(signal.SIGKILL)
        takeover = await wait_metric(survivor, FEED_OWNER_METRIC, 1.0, within=20)
        ticking = await load.wait_live(killed + DEAD_OWNER_TICKS_S, within=20)
        await load.wait_calls(2 * UNARY_CLIENTS, within=20)
        await load.halt()
    since_kill = {i: None if t is None else t + DEAD_OWNER_TICKS_S for i, t in ticking.items()}
    moved = {s.index for s in load.streams if s.endings_between(killed, math.inf)}
    stayed = [t for i, t in since_kill.items() if i not in moved and t is not None]
    reconnected = [t for i, t in since_kill.items() if i in moved and t is not None]
    worst = max((t for t in since_kill.values() if t is not None), default=math.nan)
    after_kill = [c for c in load.calls if c.ended >= killed]
    report(
        f"kill -9 of the feed owner ({owner.name}; survivor {survivor.name})",
        {
            "feed-owner lease (s)": FEED_OWNER_LEASE_S,
            "lease left when killed (s)": round(lease_left, 3),
            "survivor reports feed owner after (s)": None
            if takeover is None
            else round(takeover, 2),
            "every stream ticking again after (s)": round(worst, 2),
            "streams that stayed on the survivor: max time to ticks (s)": round(
                max(stayed, default=math.nan), 2
            ),
            "streams that reconnected: max time to ticks (s)": round(
                max(reconnected, default=math.nan), 2
            ),
            "streams on the killed replica (reconnected)": len(moved),
            "stream endings by code": dict(load.stream_endings()),
            "stream endings after the kill": sorted(
                {f"{e.code}: {e.message}" for s in load.streams for e in s.endings}
            ),
            "failed unary calls after the kill, by code": dict(load.failures(after_kill)),
            "duplicate/out-of-order sequences": load.stream_violations()[:5] or 0,
        },
    )
    await harness.restore()  # the killed replica comes back for whatever runs next
    odd = [
        f"stream {s.index}: {e.code} {e.message}"
        for s in load.streams
        for e in s.endings
        if e.code != "UNAVAILABLE"
    ]
    assert not odd, odd
    assert all(t is not None for t in since_kill.values()), f"not ticking again: {since_kill}"
    assert not load.stream_violations(), load.stream_violations()
    assert worst <= FEED_OWNER_LEASE_S, (
        f"the survivor ticked {worst:.2f} s after the feed owner was killed right after renewing"
        f" its {FEED_OWNER_LEASE_S} s lease (it reported owning the feed after {takeover} s)"
    )


async def ready_calls(address: str, account: Account) -> dict[str, float]:
    """One call of every service on `address` (no retries: the first answer counts), the
    first quote of a stream among them; the seconds each took."""
    took: dict[str, float] = {}
    async with grpc.aio.insecure_channel(address) as channel:
        # The generated constructors are typed for the sync API; on an aio channel they are
        # the async stubs.
        users: user_service_pb2_grpc.UserServiceAsyncStub = (
            user_service_pb2_grpc.UserServiceStub(channel)  # type: ignore[assignment]
        )
        quotes: marketdata_service_pb2_grpc.MarketDataServiceAsyncStub = (
            marketdata_service_pb2_grpc.MarketDataServiceStub(channel)  # type: ignore[assignment]
        )
        lists: watchlist_service_pb2_grpc.WatchlistServiceAsyncStub = (
            watchlist_service_pb2_grpc.WatchlistServiceStub(channel)  # type: ignore[assignment]
        )
        alerts: alert_service_pb2_grpc.AlertServiceAsyncStub = (
            alert_service_pb2_grpc.AlertServiceStub(channel)  # type: ignore[assignment]
        )
        brokers: brokerage_service_pb2_grpc.BrokerageServiceAsyncStub = (
            brokerage_service_pb2_grpc.BrokerageServiceStub(channel)  # type: ignore[assignment]
        )

        async def timed(name: str, call: Callable[[], Awaitable[T]]) -> T:
            started = time.monotonic()
            result = await call()
            took[name] = round(time.monotonic() - started, 3)
            return result

        login = await timed(
            "Login",
            lambda: users.Login(
                user_service_pb2.LoginRequest(email=account.email, password=account.password),
                timeout=10,
            ),
        )
        auth = (("authorization", f"Bearer {login.tokens.access_token}"),)

        async def first_quote() -> None:
            stream = quotes.StreamQuotes(md.StreamQuotesRequest(symbols=["SPY"]), metadata=auth)
            try:
                async with asyncio.timeout(10):
                    async for message in stream:
                        if message.WhichOneof("payload") == "quotes":
                            return
            finally:
                stream.cancel()

        await asyncio.gather(
            timed("GetMe", lambda: users.GetMe(user_service_pb2.GetMeRequest(), metadata=auth)),
            timed(
                "GetQuote",
                lambda: quotes.GetQuote(md.GetQuoteRequest(symbol="AAPL"), metadata=auth),
            ),
            timed(
                "CreateWatchlist",
                lambda: lists.CreateWatchlist(
                    watchlist_service_pb2.CreateWatchlistRequest(
                        parent="users/me",
                        watchlist=watchlist_pb2.Watchlist(display_name="ready"),
                        request_id=uuid.uuid4().hex,
                    ),
                    metadata=auth,
                ),
            ),
            timed(
                "ListAlerts",
                lambda: alerts.ListAlerts(
                    alert_service_pb2.ListAlertsRequest(parent="users/me"), metadata=auth
                ),
            ),
            timed(
                "ListProviders",
                lambda: brokers.ListProviders(
                    brokerage_service_pb2.ListProvidersRequest(), metadata=auth
                ),
            ),
            timed("StreamQuotes first quote", first_quote),
        )
    return took


async def health_rounds(address: str, rounds: int, interval: float = 0.05) -> HealthTimeline:
    """`rounds` overall Checks of `address`, `interval` apart."""
    timeline = HealthTimeline()
    started = time.monotonic()
    async with probe_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for _ in range(rounds):
            timeline.answers.append((time.monotonic() - started, await check_health(stub)))
            await asyncio.sleep(interval)
    return timeline


async def test_a_starting_replica_is_never_serving_before_it_can_answer(
    harness: Harness,
) -> None:
    await harness.restore()
    account = new_account("ready")
    await register(harness.edge.address, [account])
    replica = harness.replica("C", free_port())
    replica.start()
    try:
        timelines = await replica.wait_serving(services=HEALTH_NAMES)
        serving_at = time.monotonic() - replica.started_at
        try:
            took = await ready_calls(replica.address, account)
        except (grpc.aio.AioRpcError, TimeoutError) as error:
            raise AssertionError(
                f"SERVING at {serving_at:.2f} s after start, then a call failed: {error!r}"
            ) from None
        staying = await health_rounds(replica.address, 20)
        # SIGTERM: NOT_SERVING at once, and calls still answered through the drain.
        signalled = time.monotonic()
        replica.signal(signal.SIGTERM)
        await probe_until(replica.address, signalled, "NOT_SERVING", 5.0, services=HEALTH_NAMES)
        not_serving_after = time.monotonic() - signalled
        during_drain = await ready_calls(replica.address, account)
        drain_left = DRAIN_S - (time.monotonic() - signalled)
        status = await replica.wait_exit(DRAIN_S + GRACE_S + 15)
    finally:
        await replica.stop(quick=True)
    overall = timelines[""]
    unexpected = {
        name or "<overall>": bad
        for name, timeline in timelines.items()
        if (bad := timeline.unexpected(START_HEALTH_ANSWERS))
    }
    first_answer = next((t for t, a in overall.answers if a != REFUSED), math.nan)
    report(
        "start-up readiness (a third replica, probed from its first instant)",
        {
            "first health answer after start (s)": round(first_answer, 2),
            "SERVING after start (s)": round(serving_at, 2),
            "overall health answers until SERVING": dict(overall.counts()),
            "per-service answers until SERVING": {
                name: dict(t.counts()) for name, t in timelines.items() if name
            },
            "first calls right after SERVING (s each)": took,
            "health after SERVING (20 checks)": dict(staying.counts()),
            "NOT_SERVING after SIGTERM (s)": round(not_serving_after, 2),
            "calls during the drain (s each)": during_drain,
            "drain left after those calls (s)": round(drain_left, 2),
            "exit status": status,
        },
    )
    assert not unexpected, f"health answered other than refused/NOT_SERVING/SERVING: {unexpected}"
    assert set(staying.counts()) == {"SERVING"}, dict(staying.counts())
    assert drain_left > 0, "the drain was over before the calls made during it had finished"
    assert status == 0, replica.logs.tail()


@asynccontextmanager
async def rolled_back_database(tmp_path: Path) -> AsyncIterator[str]:
    """A fresh database migrated to head, then one migration back on the alert branch."""
    async with fresh_database_url("postgres", tmp_path) as url:
        done = await asyncio.to_thread(
            run_optix, ["migrate"], {"OPTIX_DATABASE_URL": url, "OPTIX_VAR_DIR": str(tmp_path)}
        )
        assert done.returncode == 0, done.stderr
        from alembic import command

        config = alembic_config(url)

        def downgrade(connection: Any) -> None:
            config.attributes["connection"] = connection
            command.downgrade(config, "alert_0002@-1")

        database = Database(url)
        try:
            async with database.engine.begin() as conn:
                await conn.run_sync(downgrade)
        finally:
            await database.dispose()
        yield url


async def refused_start(env: Mapping[str, str], tmp_path: Path) -> tuple[int, str, int]:
    """Run `optix serve` on a free port with `env`, probing the port until it exits: (exit
    status, stderr, how many probes found the port accepting connections)."""
    port = free_port()
    proc = spawn_serve(port, {"OPTIX_VAR_DIR": str(tmp_path / "var"), **env})
    accepted = 0
    for _ in range(3000):  # 60 s at most
        if proc.poll() is not None:
            break
        accepted += port_accepts(port)
        await asyncio.sleep(0.02)
    _, stderr = await asyncio.to_thread(proc.communicate, None, 30)
    return proc.returncode, stderr, accepted


async def test_a_database_behind_the_migrations_is_refused_before_listening(
    tmp_path: Path,
) -> None:
    async with rolled_back_database(tmp_path) as url:
        status, stderr, accepted = await refused_start({"OPTIX_DATABASE_URL": url}, tmp_path)
    lines = [line for line in stderr.splitlines() if line.strip()]
    report(
        "a database one migration behind head",
        {"exit status": status, "stderr": lines, "probes that found the port open": accepted},
    )
    assert status == 2, stderr
    assert len(lines) == 1 and "is not migrated (" in lines[0], stderr
    assert "alert_0001" in lines[0] and "alert_0002" in lines[0], lines[0]
    assert accepted == 0, "the refused server accepted connections before exiting"


async def test_a_database_url_with_a_malformed_port_is_refused_in_one_line(
    tmp_path: Path,
) -> None:
    url = "postgresql+asyncpg://optix:s3cret@127.0.0.1:notaport/optix"
    status, stderr, accepted = await refused_start({"OPTIX_DATABASE_URL": url}, tmp_path)
    lines = [line for line in stderr.splitlines() if line.strip()]
    report(
        "OPTIX_DATABASE_URL with a non-numeric port",
        {"exit status": status, "stderr lines": len(lines), "last line": lines[-1:]},
    )
    assert "s3cret" not in stderr
    assert accepted == 0, "the refused server accepted connections before exiting"
    assert status == 2 and len(lines) == 1 and "not a valid URL" in lines[0], stderr
