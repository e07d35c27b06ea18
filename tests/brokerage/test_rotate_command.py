"""`optix rotate-brokerage-keys`: every stored token re-sealed under the first configured key,
old rows still opening until then; a token no configured key opens is reported (exit 1)."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from optix_server.brokerage.connectors.base import TokenSet
from optix_server.brokerage.domain import Connection, ConnectionStatus
from optix_server.brokerage.models import TokenRow
from optix_server.brokerage.repository import BrokerageRepository
from optix_server.brokerage.tokens import TokenBox, TokenKey
from optix_server.brokerage.vault import TokenVault
from optix_server.cli import main
from optix_server.infra.db import Database, migrate

OLD = TokenKey("old", b"o" * 32)
NEW = TokenKey("new", b"n" * 32)


def _keys(*keys: TokenKey) -> str:
    return ",".join(f"{k.key_id}:{base64.b64encode(k.secret).decode()}" for k in keys)


async def _seed(url: str) -> None:
    database = Database(url)
    try:
        await migrate(database)
        repository = BrokerageRepository(database)
        vault = TokenVault(TokenBox([OLD]))
        now = datetime.now(UTC)
        for index in range(3):
            connection_id = f"c{index}"
            await repository.create_connection(
                Connection(
                    connection_id, "u1", "paper", "Paper", ConnectionStatus.ACTIVE, now, now
                ),
                vault.seal(
                    connection_id, TokenSet(f"access-{index}", None, f"refresh-{index}", None)
                ),
                max_per_user=10,
            )
    finally:
        await database.dispose()


async def _sealed(url: str) -> list[str]:
    database = Database(url)
    try:
        async with database.session() as session:
            rows = await session.scalars(select(TokenRow).order_by(TokenRow.connection_id))
            return [value for row in rows for value in (row.sealed_access, row.sealed_refresh)]
    finally:
        await database.dispose()


def test_rotation_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'rotate.db'}"
    asyncio.run(_seed(url))
    monkeypatch.setenv("OPTIX_DATABASE_URL", url)
    monkeypatch.setenv("OPTIX_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("OPTIX_BROKERAGE_TOKEN_KEYS", _keys(NEW, OLD))
    assert main(["rotate-brokerage-keys"]) == 0
    assert "6 re-sealed" in capsys.readouterr().out
    sealed = asyncio.run(_sealed(url))
    assert len(sealed) == 6 and all(v.startswith("new:") for v in sealed)
    assert all("access-" not in v and "refresh-" not in v for v in sealed)
    # The old key can go now; a second run has nothing to do.
    monkeypatch.setenv("OPTIX_BROKERAGE_TOKEN_KEYS", _keys(NEW))
    assert main(["rotate-brokerage-keys"]) == 0
    assert "0 re-sealed" in capsys.readouterr().out
    # Configured without the key the rows are under: reported, exit 1, rows untouched.
    monkeypatch.setenv("OPTIX_BROKERAGE_TOKEN_KEYS", _keys(OLD))
    assert main(["rotate-brokerage-keys"]) == 1
    captured = capsys.readouterr()
    assert "6 unreadable" in captured.out and "c0/access" in captured.err
    assert asyncio.run(_sealed(url)) == sealed
