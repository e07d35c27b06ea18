"""The webhook sender against local HTTPS receivers with their own CA (SQLite and PostgreSQL):
signed delivery, retries with the same event id and growing delays on an injected clock,
timeouts, restarts, leases between two senders, redirects, SSRF refusal at send time, giving
up, secret rotation and certificate checks against the URL's host name."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import ssl
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer

import pytest
import pytest_asyncio
import trustme
from google.protobuf import json_format
from sqlalchemy import delete, inspect

from optix.alert.v1 import alert_event_pb2
from optix_server.alert.config import AlertSettings, WebhookSettings
from optix_server.alert.domain import DeliveryState
from optix_server.alert.models import (
    AlertEventRow,
    AlertRow,
    WebhookAttemptRow,
    WebhookDeliveryRow,
)
from optix_server.alert.webhooks import AttemptRecord, WebhookOutbox, WebhookSender
from optix_server.alert.webhooks.delivery import AttemptResult, Outcome
from optix_server.alert.webhooks.signing import verify_signature
from optix_server.infra.db import Database, migrate
from tests.support import webhook_receiver_example as example
from tests.support.backends import fresh_database_url
from tests.support.webhook_outbox import Key, OutboxRows
from tests.support.webhook_receiver import (
    ReceivedRequest,
    Reply,
    Responder,
    WebhookReceiver,
    client_context,
)

pytestmark = pytest.mark.asyncio(loop_scope="package")

T0 = datetime(2030, 1, 2, 15, 30, tzinfo=UTC)
SECRET = "whsec_test-secret-0123456789"
WAIT = 10.0
# Real defaults except what keeps the tests quick: only a poke (or a first loop turn) makes a
# sender look, so a test sees exactly the attempts it caused.
SETTINGS = WebhookSettings(poll_interval=timedelta(seconds=60))


class ManualClock:
    """A clock that moves only when the test says so, and tells when it was read."""

    def __init__(self) -> None:
        self.time = T0
        self.read = asyncio.Event()

    def now(self) -> datetime:
        """The test's current time."""
        self.read.set()
        return self.time


@dataclass
class Env:
    """A migrated database, rows written the way firing writes them, a receiver and senders."""

    url: str
    database: Database
    rows: OutboxRows
    clock: ManualClock
    receiver: WebhookReceiver
    ca: trustme.CA
    senders: list[WebhookSender] = field(default_factory=list)
    databases: list[Database] = field(default_factory=list)

    def sender(
        self,
        *,
        allow_private: bool = True,
        webhook: WebhookSettings = SETTINGS,
        database: Database | None = None,
        on_attempt: Callable[[AttemptRecord], None] | None = None,
        trust_test_ca: bool = True,
    ) -> WebhookSender:
        """A sender on this database (or another handle to it: another replica), trusting the
        test CA; stopped after the test."""
        sender = WebhookSender(
            database or self.database,
            self.rows.secrets,
            AlertSettings(allow_private_webhooks=allow_private, webhook=webhook),
            self.clock,
            ssl_context=client_context(self.ca) if trust_test_ca else None,
            rng=random.Random(7),
            on_attempt=on_attempt,
        )
        self.senders.append(sender)
        return sender

    def replica_database(self) -> Database:
        """A second engine on the same database, as another replica has."""
        database = Database(self.url)
        self.databases.append(database)
        return database

    async def history(self, key: Key) -> list[AttemptRecord]:
        """The attempts log of a delivery."""
        return await WebhookOutbox(self.database).history(key.user_id, key.event_id)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """The receivers' own certificate authority."""
    return trustme.CA()


@pytest_asyncio.fixture(scope="module", loop_scope="package")
async def migrated_url(
    db_kind: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """One migrated database per backend for this module (tests empty the alert tables)."""
    async with fresh_database_url(db_kind, tmp_path_factory.mktemp(f"hooks-{db_kind}")) as url:
        database = Database(url)
        try:
            await migrate(database)
        finally:
            await database.dispose()
        yield url


@pytest_asyncio.fixture(loop_scope="package")
async def env(migrated_url: str, ca: trustme.CA) -> AsyncIterator[Env]:
    """Empty alert tables, a started receiver, and cleanup of the senders a test made."""
    database = Database(migrated_url)
    async with database.session() as session:
        for model in (WebhookAttemptRow, WebhookDeliveryRow, AlertEventRow, AlertRow):
            await session.execute(delete(model))
    receiver = WebhookReceiver(ca)
    await receiver.start()
    state = Env(migrated_url, database, OutboxRows(database), ManualClock(), receiver, ca)
    try:
        yield state
    finally:
        for sender in state.senders:
            await sender.stop()
        await receiver.close()
        for handle in [*state.databases, database]:
            await handle.dispose()


def use(env: Env, *steps: int | str) -> None:
    """Make the receiver answer each request with the next step: a status, or "hang" (no
    answer until the receiver closes)."""
    remaining = iter(steps)
    release = env.receiver.release

    async def respond(_request: ReceivedRequest) -> Reply:
        step = next(remaining)
        if step == "hang":
            await release.wait()
            return Reply(200)
        assert isinstance(step, int)
        return Reply(step)

    env.receiver.responder = respond


def verifies(request: ReceivedRequest, secret: str, at: datetime) -> bool:
    """The request's signature checks out with `secret` at time `at`."""
    return verify_signature(
        secret, request.headers["optix-signature"], request.body, now=at.timestamp()
    )


async def test_delivers_a_signed_event_that_the_receiver_verifies(env: Env) -> None:
    key = await env.rows.add(env.receiver.url(), SECRET, T0)
    sender = env.sender()

    assert await sender.run_once() == 1

    [request] = env.receiver.requests
    assert (request.method, request.target) == ("POST", "/hooks/optix")
    # The certificate names only "localhost" and the connection went to 127.0.0.1: TLS checked
    # the URL's host name, which the sender also sent as SNI and Host.
    assert env.receiver.server_names == ["localhost"]
    assert request.headers["host"] == f"localhost:{env.receiver.port}"
    assert request.headers["content-type"] == "application/json"
    assert request.event_id == str(key.event_id)
    assert request.headers["optix-signature"].startswith(f"t={int(T0.timestamp())},v1=")
    assert verifies(request, SECRET, T0)
    assert not verifies(request, "whsec_another", T0)
    event = json_format.Parse(request.body, alert_event_pb2.AlertEvent())
    assert event.name == f"users/{key.user_id}/alerts/{key.alert_id}/events/{key.event_id}"
    assert event.alert_display_name == "AAPL above 190.00"
    assert event.trigger_values.observed_value == 190.5
    assert json.loads(request.body)["eventId"] == str(key.event_id)

    row = await env.rows.delivery(key)
    assert (row.state, row.attempts, row.last_status) == ("delivered", 1, 204)
    assert (row.lease_owner, row.lease_until, row.last_error) == (None, None, None)
    assert await env.rows.event_delivery_state(key) == "delivered"
    [attempt] = await env.history(key)
    assert (attempt.attempt, attempt.status, attempt.state) == (1, 204, DeliveryState.DELIVERED)
    stored = repr(vars(row)) + repr(attempt)
    assert SECRET not in stored
    assert request.headers["optix-signature"] not in stored
    assert await sender.run_once() == 0


async def test_5xx_and_timeouts_are_retried_with_the_same_event_id_and_growing_delays(
    env: Env,
) -> None:
    key = await env.rows.add(env.receiver.url(), SECRET, T0)
    use(env, 503, "hang", 500, 204)
    sender = env.sender(webhook=WebhookSettings(timeout=timedelta(seconds=0.25)))
    delays: list[timedelta] = []

    for _ in range(3):
        assert await sender.run_once() == 1
        row = await env.rows.delivery(key)
        assert row.state == "pending"
        assert row.last_attempt_time == env.clock.now()
        delays.append(row.next_attempt_time - env.clock.now())
        # Not before it is due, then at once.
        env.clock.time = row.next_attempt_time - timedelta(milliseconds=1)
        assert await sender.run_once() == 0
        env.clock.time = row.next_attempt_time
    assert await sender.run_once() == 1

    assert {request.event_id for request in env.receiver.requests} == {str(key.event_id)}
    assert len({request.body for request in env.receiver.requests}) == 1
    # Each failure waits base * 2**(n-1), less at most 20% jitter.
    for n, delay in enumerate(delays, start=1):
        full = SETTINGS.backoff_base * 2 ** (n - 1)
        assert full * (1 - SETTINGS.jitter) <= delay <= full
    assert delays == sorted(delays) and len(set(delays)) == 3
    history = await env.history(key)
    assert [attempt.status for attempt in history] == [503, None, 500, 204]
    assert history[1].error is not None and "no response within 0.25 s" in history[1].error
    assert [attempt.state for attempt in history][-1] is DeliveryState.DELIVERED
    for request, attempt in zip(env.receiver.requests, history, strict=True):
        assert verifies(request, SECRET, attempt.attempt_time)
    row = await env.rows.delivery(key)
    assert (row.state, row.attempts) == ("delivered", 4)


async def test_a_new_sender_delivers_what_a_stopped_one_left_for_retry(env: Env) -> None:
    key = await env.rows.add(env.receiver.url(), SECRET, T0)
    use(env, 503, 204)
    attempts: asyncio.Queue[AttemptRecord] = asyncio.Queue()

    first = env.sender(on_attempt=attempts.put_nowait)
    first.start()
    failed = await asyncio.wait_for(attempts.get(), WAIT)
    assert (failed.status, failed.state) == (503, DeliveryState.PENDING)
    await first.stop()
    assert failed.next_attempt_time is not None

    # A restart: a new sender (new lease owner), nothing in memory but the table. It looks at
    # start (reading the clock for its claim), finds nothing due yet, and sleeps until poked:
    # its poll interval is a minute.
    second = env.sender(on_attempt=attempts.put_nowait)
    env.clock.read.clear()
    second.start()
    await asyncio.wait_for(env.clock.read.wait(), WAIT)
    env.clock.time = failed.next_attempt_time
    second.notify()
    delivered = await asyncio.wait_for(attempts.get(), WAIT)

    assert (delivered.attempt, delivered.state) == (2, DeliveryState.DELIVERED)
    assert [request.event_id for request in env.receiver.requests] == [str(key.event_id)] * 2
    assert await env.rows.event_delivery_state(key) == "delivered"


async def test_a_crashed_claimer_holds_a_row_only_until_its_lease_ends(env: Env) -> None:
    key = await env.rows.add(env.receiver.url(), SECRET, T0)
    outbox = WebhookOutbox(env.database)
    [orphan] = await outbox.claim("crashed-replica", T0, 10, SETTINGS.lease)
    sender = env.sender()

    assert await sender.run_once() == 0
    env.clock.time = T0 + SETTINGS.lease - timedelta(milliseconds=1)
    assert await sender.run_once() == 0
    env.clock.time = T0 + SETTINGS.lease
    assert await sender.run_once() == 1

    assert len(env.receiver.requests) == 1
    assert (await env.rows.delivery(key)).state == "delivered"
    # The dead replica's late word changes nothing.
    late = await outbox.record(
        orphan, "crashed-replica", T0, AttemptResult(500, "HTTP 500"), Outcome(DeliveryState.FAILED)
    )
    assert late is None
    row = await env.rows.delivery(key)
    assert (row.state, row.attempts) == ("delivered", 1)
    assert await env.rows.event_delivery_state(key) == "delivered"


async def test_concurrent_claims_never_share_a_row(env: Env) -> None:
    keys = [await env.rows.add(env.receiver.url(), SECRET, T0) for _ in range(12)]
    outboxes = [WebhookOutbox(env.replica_database()) for _ in range(3)]

    claims = await asyncio.gather(
        *(outbox.claim(f"replica-{i}", T0, 12, SETTINGS.lease) for i, outbox in enumerate(outboxes))
    )

    taken = [(d.user_id, d.event_id) for claim in claims for d in claim]
    assert len(taken) == len(set(taken))
    assert set(taken) <= {(k.user_id, k.event_id) for k in keys}


async def test_two_senders_on_one_database_deliver_each_row_once(env: Env) -> None:
    keys = [await env.rows.add(env.receiver.url(), SECRET, T0) for _ in range(24)]
    done = asyncio.Event()
    records: list[AttemptRecord] = []

    def seen(record: AttemptRecord) -> None:
        records.append(record)
        if len(records) == len(keys):
            done.set()

    narrow = WebhookSettings(poll_interval=timedelta(seconds=60), concurrency=4)
    senders = [
        env.sender(webhook=narrow, on_attempt=seen),
        env.sender(webhook=narrow, on_attempt=seen, database=env.replica_database()),
    ]
    for sender in senders:
        sender.start()
        sender.notify()
    await asyncio.wait_for(done.wait(), WAIT)

    assert sorted(int(r.event_id) for r in env.receiver.requests) == [k.event_id for k in keys]
    assert env.receiver.max_concurrent_per_event == 1
    assert {(r.attempt, r.state) for r in records} == {(1, DeliveryState.DELIVERED)}
    for key in keys:
        assert (await env.rows.delivery(key)).attempts == 1


async def test_a_redirect_is_not_followed_and_is_retried(env: Env) -> None:
    key = await env.rows.add(env.receiver.url(), SECRET, T0)
    env.receiver.responder = _redirect(env.receiver.url("/elsewhere"))

    assert await env.sender().run_once() == 1

    assert [request.target for request in env.receiver.requests] == ["/hooks/optix"]
    row = await env.rows.delivery(key)
    assert (row.state, row.last_status) == ("pending", 302)
    assert row.last_error is not None and "redirects are not followed" in row.last_error
    assert await env.rows.event_delivery_state(key) == "pending"


def _redirect(location: str) -> Responder:
    async def respond(_request: ReceivedRequest) -> Reply:
        return Reply(302, (("Location", location),))

    return respond


async def test_a_host_resolving_to_loopback_is_refused_at_send_time(env: Env) -> None:
    # "localhost" resolves to 127.0.0.1: refused for good, nothing is sent, not even a
    # TLS hello.
    key = await env.rows.add(env.receiver.url(), SECRET, T0)

    assert await env.sender(allow_private=False).run_once() == 1

    assert env.receiver.requests == [] and env.receiver.server_names == []
    row = await env.rows.delivery(key)
    assert (row.state, row.attempts, row.last_status) == ("failed", 1, None)
    assert row.last_error is not None and "127.0.0.1 is not a public address" in row.last_error
    assert await env.rows.event_delivery_state(key) == "failed"


async def test_retries_end_at_the_give_up_time_with_failed_on_delivery_and_event(
    env: Env,
) -> None:
    give_up = T0 + timedelta(minutes=10)
    key = await env.rows.add(env.receiver.url(), SECRET, T0, max_age=give_up - T0)
    env.receiver.responder = _always(500)
    sender = env.sender()
    times: list[datetime] = []

    while (row := await env.rows.delivery(key)).state == "pending":
        env.clock.time = row.next_attempt_time
        times.append(env.clock.time)
        assert await sender.run_once() == 1

    assert (row.state, row.last_status) == ("failed", 500)
    assert await env.rows.event_delivery_state(key) == "failed"
    # 5 s, 10 s, 20 s ... less jitter, then the last retry exactly at the give-up time.
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[:-1] == sorted(gaps[:-1])
    assert times[-1] == give_up and len(times) == row.attempts == len(env.receiver.requests)
    assert all(t <= give_up for t in times)
    assert await sender.run_once() == 0


def _always(status: int) -> Responder:
    async def respond(_request: ReceivedRequest) -> Reply:
        return Reply(status)

    return respond


async def test_the_alert_current_secret_signs_and_the_snapshot_once_it_is_deleted(
    env: Env,
) -> None:
    key = await env.rows.add(env.receiver.url(), "whsec_at-fire", T0, alert_secret="whsec_now")
    env.receiver.responder = _always(500)
    sender = env.sender()

    async def attempt(secret: str) -> None:
        row = await env.rows.delivery(key)
        env.clock.time = row.next_attempt_time
        assert await sender.run_once() == 1
        assert verifies(env.receiver.requests[-1], secret, env.clock.time)

    await attempt("whsec_now")
    await env.rows.rotate(key, "whsec_rotated")
    await attempt("whsec_rotated")
    await env.rows.delete_alert(key)
    await attempt("whsec_at-fire")
    assert len({request.event_id for request in env.receiver.requests}) == 1


async def test_the_certificate_must_name_the_url_host_and_chain_to_a_trusted_ca(
    env: Env,
) -> None:
    elsewhere = WebhookReceiver(env.ca, cert_hostnames=("elsewhere.example",))
    await elsewhere.start()
    try:
        wrong_name = await env.rows.add(elsewhere.url(), SECRET, T0)
        assert await env.sender().run_once() == 1
        # The first row now waits for its retry; the default trust store (certifi) does not
        # know the test CA.
        untrusted = await env.rows.add(env.receiver.url(), SECRET, T0)
        assert await env.sender(trust_test_ca=False).run_once() == 1
    finally:
        await elsewhere.close()

    assert elsewhere.requests == [] and env.receiver.requests == []
    for key in (wrong_name, untrusted):
        row = await env.rows.delivery(key)
        assert row.state == "pending" and row.last_status is None
        assert row.last_error is not None and "CERTIFICATE_VERIFY_FAILED" in row.last_error


async def test_the_readme_receiver_example_accepts_the_sender_and_rejects_a_bad_signature(
    env: Env,
) -> None:
    # The example checks signatures against the wall clock.
    env.clock.time = datetime.now(UTC)
    with ExampleServer(env.ca, SECRET) as port:
        url = f"https://localhost:{port}/optix"
        good = await env.rows.add(url, SECRET, env.clock.time)
        forged = await env.rows.add(url, "whsec_not-the-receivers", env.clock.time)
        assert await env.sender().run_once() == 2

    assert (await env.rows.delivery(good)).last_status == 204
    assert (await env.rows.delivery(forged)).last_status == 401


class ExampleServer:
    """The README example served over TLS in a thread, with `secret`."""

    def __init__(self, ca: trustme.CA, secret: str) -> None:
        handler = type("Handler", (example.OptixWebhook,), {"secret": secret, "seen": set()})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("localhost").configure_cert(context)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> int:
        self._thread.start()
        return int(self._server.server_address[1])

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


async def test_the_migration_creates_the_outbox_tables_as_the_models_declare(env: Env) -> None:
    models = (WebhookDeliveryRow, WebhookAttemptRow)

    def shape(connection: object) -> dict[str, tuple[set[str], set[str]]]:
        inspector = inspect(connection)
        return {
            model.__tablename__: (
                {column["name"] for column in inspector.get_columns(model.__tablename__)},
                {str(index["name"]) for index in inspector.get_indexes(model.__tablename__)},
            )
            for model in models
        }

    async with env.database.engine.connect() as connection:
        migrated = await connection.run_sync(shape)
    assert migrated == {
        model.__tablename__: (
            set(model.metadata.tables[model.__tablename__].columns.keys()),
            {str(index.name) for index in model.metadata.tables[model.__tablename__].indexes},
        )
        for model in models
    }


async def test_prune_deletes_old_deliveries_and_their_attempts(env: Env) -> None:
    key = await env.rows.add(env.receiver.url(), SECRET, T0)
    assert await env.sender().run_once() == 1
    outbox = WebhookOutbox(env.database)

    assert await outbox.prune(T0) == 0
    assert await outbox.prune(T0 + timedelta(seconds=1)) == 1
    assert await outbox.history(key.user_id, key.event_id) == []


async def test_a_delivery_to_another_url_than_the_alerts_own_keeps_its_snapshot(
    env: Env,
) -> None:
    # Fired to one URL (the user's default, say); then the alert got its own URL and secret:
    # the retries of the old delivery stay signed as it fired.
    key = await env.rows.add(env.receiver.url(), "whsec_at-fire", T0, alert_secret="whsec_own")
    await env.rows.move_alert_url(key, "https://alerts.example/hook", "whsec_elsewhere")
    row = await env.rows.delivery(key)
    env.clock.time = row.next_attempt_time
    assert await env.sender().run_once() == 1
    assert verifies(env.receiver.requests[-1], "whsec_at-fire", env.clock.time)
