"""The server process of the alert latency benchmark: user + marketdata + alert on SQLite with
`count` ACTIVE alerts already stored on one symbol (levels the market never reaches, so they sit
in the index and are looked at on every tick but never fire), serving until stdin closes.

Usage: python -m tests.bench.alert_latency_server <tmp dir> <symbol> <count> <tick rate>"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from optix_server.alert.conditions import Condition, ConditionKind, Direction, PriceType
from optix_server.alert.models import AlertRow
from optix_server.alert.storage_codec import condition_json
from optix_server.infra.db import Database, migrate
from optix_server.infra.gc_policy import apply_gc_policy
from tests.support.server import make_settings, running_server

SERVICES = ("user", "marketdata", "alert")


def _background(symbol: str, count: int) -> list[dict[str, object]]:
    """`count` alert rows of a made-up user: thresholds and crossings far above the market."""
    now = datetime.now(UTC)
    rows: list[dict[str, object]] = []
    for i in range(count):
        level = 1_000_000.0 + i
        condition = (
            Condition(ConditionKind.PRICE_ABOVE, level, price_type=PriceType.LAST)
            if i % 2
            else Condition(
                ConditionKind.PRICE_CROSSING,
                level,
                direction=Direction.EITHER,
                price_type=PriceType.LAST,
            )
        )
        rows.append(
            {
                "id": f"bg{i:030d}",
                "user_id": "bench-background",
                "display_name": "background",
                "symbol": symbol,
                "condition": condition_json(condition),
                "frequency": "once",
                "cooldown_seconds": 300,
                "state": "active",
                "webhook_url": "",
                "webhook_disabled": False,
                "note": "",
                "fire_count": 0,
                "revision": 1,
                "create_time": now - timedelta(seconds=count - i),
                "update_time": now,
            }
        )
    return rows


async def _serve(tmp: Path, symbol: str, count: int, tick_rate: float) -> None:
    url = f"sqlite+aiosqlite:///{(tmp / 'alerts.db').as_posix()}"
    database = Database(url)
    try:
        await migrate(database)
        rows = _background(symbol, count)
        async with database.session() as session:
            for start in range(0, len(rows), 5000):
                await session.execute(insert(AlertRow), rows[start : start + 5000])
    finally:
        await database.dispose()
    settings = make_settings(
        url,
        tmp,
        services=SERVICES,
        env={
            "OPTIX_USER_REGISTRATIONS_PER_ADDRESS": "1000000",
            "OPTIX_MARKETDATA_TICK_RATE": str(tick_rate),
            "OPTIX_ACCESS_LOG": "off",
        },
    )
    apply_gc_policy()
    async with running_server(settings) as running:
        print(f"ready {running.address}", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    directory, name, how_many, rate = sys.argv[1:5]
    asyncio.run(_serve(Path(directory), name, int(how_many), float(rate)))
