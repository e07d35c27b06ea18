"""One sync-worker replica for bench_brokerage, in its own process: a server hosting user, market
data and brokerage on a shared database and Redis (its background loop off), which optionally
seeds connections, prints "BENCH ready", waits for a line on stdin, runs every due sync with
the slice's own SyncWorker and prints "BENCH {"synced": n, "seconds": s}".

Usage: python -m tests.bench.brokerage_worker CONFIG.json  (see bench_brokerage.worker_config)
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from optix_server.brokerage.config import BrokerageSettings
from optix_server.brokerage.connectors.base import TokenSet
from optix_server.brokerage.domain import Connection, ConnectionStatus, SyncState
from optix_server.brokerage.repository import BrokerageRepository
from optix_server.brokerage.sync import SyncWorker
from optix_server.brokerage.vault import TokenVault
from optix_server.brokerage.wiring import token_box
from optix_server.infra.db import new_id
from optix_server.infra.settings import Settings
from tests.support.server import make_settings, running_server

SERVICES = ("user", "marketdata", "brokerage")
CONNECTIONS_PER_USER = 10
ACCESS_LIFETIME_S = 1800
REFRESH_LIFETIME_S = 7 * 86400
# Starts the lines meant for the benchmark (the server logs to stdout too).
MARKER = "BENCH"


async def seed(
    settings: Settings, repository: BrokerageRepository, tokens: list[list[str]]
) -> None:
    """One queued Schwab connection per (access, refresh) pair, ten per synthetic user, with
    its tokens sealed the way CompleteConnection seals them."""
    vault = TokenVault(token_box(settings, BrokerageSettings.from_env(settings.env)))
    now = datetime.now(UTC)
    for i, (access, refresh) in enumerate(tokens):
        connection_id = new_id()
        pair = TokenSet(
            access_token=access,
            access_expires_at=datetime.fromtimestamp(now.timestamp() + ACCESS_LIFETIME_S, UTC),
            refresh_token=refresh,
            refresh_expires_at=datetime.fromtimestamp(now.timestamp() + REFRESH_LIFETIME_S, UTC),
        )
        await repository.create_connection(
            Connection(
                id=connection_id,
                user_id=f"benchuser{i // CONNECTIONS_PER_USER:05d}",
                provider="schwab",
                display_name="Charles Schwab",
                status=ConnectionStatus.SYNCING,
                create_time=now,
                update_time=now,
                reauth_required_time=pair.refresh_expires_at,
                sync_state=SyncState.QUEUED,
                sync_create_time=now,
            ),
            vault.seal(connection_id, pair),
            max_per_user=CONNECTIONS_PER_USER,
        )


async def main(config: dict[str, Any]) -> None:
    """Start, seed if asked, wait for the go line, sync everything due, report."""
    settings = make_settings(
        config["database_url"],
        Path(config["var_dir"]),
        redis_url=config["redis_url"],
        redis_prefix=config["redis_prefix"],
        services=SERVICES,
        env=config["env"],
    )
    async with running_server(settings) as running:
        module = next(m for m in running.server.modules if m.name == "brokerage")
        worker, repository = module.extra["worker"], module.extra["repository"]
        assert isinstance(worker, SyncWorker) and isinstance(repository, BrokerageRepository)
        if config.get("tokens"):
            await seed(settings, repository, config["tokens"])
        print(MARKER, "ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        began = time.perf_counter()
        synced = await worker.run_due()
        report = {"synced": synced, "seconds": time.perf_counter() - began}
        print(MARKER, json.dumps(report), flush=True)
        await asyncio.to_thread(sys.stdin.readline)


if __name__ == "__main__":
    asyncio.run(main(json.loads(Path(sys.argv[1]).read_text())))
