"""The web client's symbol rule (clients/web/src/symbols.ts) says what the server's says.

The demo app refuses a bad symbol before calling, in the server's words and field paths; this
holds the two implementations against each other on inputs that reach every branch of
common/occ.py and symbol_fields.symbol_list.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from optix_server.common.occ import SymbolError, normalize_symbol
from optix_server.common.symbol_fields import symbol_list
from optix_server.infra.errors import ViolationCollector

WEB = Path(__file__).resolve().parents[2] / "clients" / "web"
CHECK = WEB / "dist" / "node" / "symbols-check.mjs"

INPUTS = [
    "AAPL", " aapl ", "brk.b", "BRK/B", "BF-B", "$SPX", "$spx", "A", "ABCDEFGHIJ",
    "", "   ", "??", "1ABC", "$", "$1", "A B", "ABCDEFGHIJK", "AAPL!", "ÄPPL", "aapl\t",
    "AAPL  240621C00190000", "aapl240621c00190000", "AAPL 240621P00190000",
    "AAPL1 240621C00190000", "SPXW  240621C05000000", "AAPL  241332C00190000",
    "AAPL  240230C00190000", "AAPL  240621C00000000", "AAPL  240621X00190000",
    "AAPL  240621C0019000", "AAPLXYZ240621C00190000", "AAPL  240621C001900000",
    "$SPX  240621C05000000", "A     000101C00000001", "ZZZZZZ991231P99999999",
]  # fmt: skip


LIMIT = 3
LISTS = [
    [], ["AAPL"], ["aapl", "AAPL", " msft"], ["AAPL", "??", "MSFT", ""], ["A", "B", "C"],
    ["A", "B", "C", "D"], ["A", "A", "A"], ["??", "1X"],
]  # fmt: skip


def _symbol(value: str) -> dict[str, str]:
    try:
        return {"symbol": normalize_symbol(value)}
    except SymbolError as exc:
        return {"error": str(exc)}


def _list(values: list[str]) -> dict[str, object]:
    collector = ViolationCollector()
    symbols = symbol_list(collector, "symbols", values, LIMIT)
    violations = [{"field": v.field, "description": v.description} for v in collector.violations]
    return {"symbols": symbols, "violations": violations}


def test_web_symbol_rule_matches_the_server() -> None:
    node = shutil.which("node")
    assert node is not None, "node is not installed"
    assert CHECK.exists(), "clients/web is not built: run `make web`"
    done = subprocess.run(
        [node, str(CHECK)],
        input=json.dumps({"symbols": INPUTS, "lists": LISTS, "limit": LIMIT}),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=WEB,
        check=True,
    )
    web = json.loads(done.stdout)
    symbol_mismatches = [
        (value, server, client)
        for value, server, client in zip(INPUTS, map(_symbol, INPUTS), web["symbols"], strict=True)
        if server != client
    ]
    assert symbol_mismatches == []
    list_mismatches = [
        (values, server, client)
        for values, server, client in zip(LISTS, map(_list, LISTS), web["lists"], strict=True)
        if server != client
    ]
    assert list_mismatches == []
