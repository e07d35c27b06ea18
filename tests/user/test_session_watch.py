"""The session watch ends the streams of ended sessions, also when the announcement is lost."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from optix_server.infra.auth.revocation import MemoryRevocationLog, SessionRevocations
from optix_server.infra.auth.session_watch import SessionWatch
from optix_server.infra.pubsub import InMemoryPubSub


async def test_a_sweep_ends_sessions_whose_announcement_never_arrived() -> None:
    # Revoked without an announcer: like an ending announced while Redis pub/sub was down.
    revocations = SessionRevocations(MemoryRevocationLog(), timedelta(minutes=15))
    watch = SessionWatch(InMemoryPubSub(), revocations.ended_among, sweep_seconds=0.05)
    await watch.start()
    loop = asyncio.get_running_loop()
    ended, kept = loop.create_future(), loop.create_future()
    watch.watch("ended", lambda: ended.set_result(None) if not ended.done() else None)
    watch.watch("kept", lambda: kept.set_result(None))
    try:
        await revocations.revoke("ended")
        await asyncio.wait_for(ended, 10)
        assert await revocations.ended_among(["ended", "kept", "unknown"]) == {"ended"}
        assert not kept.done()
    finally:
        await watch.stop()
