"""Bad alert input is INVALID_ARGUMENT naming each bad field, and nothing is written: symbols,
levels (NaN, infinite, zero, negative, out of range), option-only kinds, windows, cooldowns,
expiry, text limits, webhook URLs (HTTPS only, length, and the SSRF rule on resolved
addresses)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.protobuf import field_mask_pb2
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from optix.alert.v1 import alert_pb2, alert_service_pb2
from tests.alert.harness import Stack, price_above
from tests.support.sdk_errors import invalid

pytestmark = pytest.mark.asyncio(loop_scope="package")

C = alert_pb2.AlertCondition
UP = alert_pb2.MOVE_DIRECTION_UP
OCC = "option"  # replaced by a listed contract in the test


def _ts(delta: timedelta) -> Timestamp:
    value = Timestamp()
    value.FromDatetime(datetime.now(UTC) + delta)
    return value


BAD_LEVELS = [math.nan, math.inf, -math.inf, 0.0, -1.0]

# (symbol, alert fields, the violated field paths)
CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("", {}, ["alert.symbol"]),
    ("NOT A SYMBOL!", {}, ["alert.symbol"]),
    ("ZZZZZ", {}, ["alert.symbol"]),  # well-formed, but market data does not know it
    ("AAPL  240621X00190000", {}, ["alert.symbol"]),
    ("AAPL", {"condition": C()}, ["alert.condition"]),
    *[
        ("AAPL", {"condition": price_above(level)}, ["alert.condition.price_above.price"])
        for level in BAD_LEVELS
    ],
    *[
        (
            "AAPL",
            {"condition": C(price_crossing=alert_pb2.PriceCrossing(price=level, direction=UP))},
            ["alert.condition.price_crossing.price"],
        )
        for level in BAD_LEVELS
    ],
    (
        "AAPL",
        {"condition": C(price_crossing=alert_pb2.PriceCrossing(price=10))},
        ["alert.condition.price_crossing.direction"],
    ),
    (
        "AAPL",
        {
            "condition": C(
                price_below=alert_pb2.PriceThreshold(
                    price=10, price_type=alert_pb2.PriceType.ValueType(99)
                )
            )
        },
        ["alert.condition.price_below.price_type"],
    ),
    *[
        (
            "AAPL",
            {"condition": C(percent_move=alert_pb2.PercentMove(percent=level, direction=UP))},
            ["alert.condition.percent_move.percent"],
        )
        for level in [*BAD_LEVELS, 1000.5]
    ],
    (
        "AAPL",
        {
            "condition": C(
                percent_move=alert_pb2.PercentMove(
                    percent=5, direction=UP, basis=alert_pb2.PERCENT_MOVE_BASIS_WINDOW
                )
            )
        },
        ["alert.condition.percent_move.window"],
    ),
    *[
        (
            "AAPL",
            {
                "condition": C(
                    percent_move=alert_pb2.PercentMove(
                        percent=5,
                        direction=UP,
                        basis=alert_pb2.PERCENT_MOVE_BASIS_WINDOW,
                        window=window,
                    )
                )
            },
            ["alert.condition.percent_move.window"],
        )
        for window in [Duration(seconds=59), Duration(seconds=86_401), Duration(seconds=-60)]
    ],
    (
        "AAPL",
        {"condition": C(day_volume_above=alert_pb2.VolumeThreshold(volume=0))},
        ["alert.condition.day_volume_above.volume"],
    ),
    # Option-only kinds on an equity.
    (
        "AAPL",
        {
            "condition": C(
                implied_volatility_above=alert_pb2.ImpliedVolatilityThreshold(
                    implied_volatility=0.5
                )
            )
        },
        ["alert.condition.implied_volatility_above"],
    ),
    (
        "AAPL",
        {"condition": C(delta_crossing=alert_pb2.DeltaCrossing(delta=0.5, direction=UP))},
        ["alert.condition.delta_crossing"],
    ),
    *[
        (
            OCC,
            {
                "condition": C(
                    implied_volatility_below=alert_pb2.ImpliedVolatilityThreshold(
                        implied_volatility=level
                    )
                )
            },
            ["alert.condition.implied_volatility_below.implied_volatility"],
        )
        for level in [*BAD_LEVELS, 10.01]
    ],
    *[
        (
            OCC,
            {"condition": C(delta_crossing=alert_pb2.DeltaCrossing(delta=level, direction=UP))},
            ["alert.condition.delta_crossing.delta"],
        )
        for level in [math.nan, math.inf, 1.0001, -1.5]
    ],
    (
        OCC,
        {"condition": C(delta_crossing=alert_pb2.DeltaCrossing(delta=0.3))},
        ["alert.condition.delta_crossing.direction"],
    ),
    *[
        (
            "AAPL",
            {"frequency": alert_pb2.ALERT_FREQUENCY_EVERY_TIME, "cooldown": cooldown},
            ["alert.cooldown"],
        )
        for cooldown in [
            Duration(seconds=59),
            Duration(seconds=7 * 86400 + 1),
            Duration(seconds=-5),
        ]
    ],
    ("AAPL", {"frequency": 42}, ["alert.frequency"]),
    ("AAPL", {"expire_time": _ts(-timedelta(minutes=1))}, ["alert.expire_time"]),
    ("AAPL", {"display_name": "x" * 101}, ["alert.display_name"]),
    ("AAPL", {"display_name": "bell\x07"}, ["alert.display_name"]),
    ("AAPL", {"note": "n" * 501}, ["alert.note"]),
    *[
        (
            "AAPL",
            {"delivery": alert_pb2.AlertDelivery(webhook_url=url)},
            ["alert.delivery.webhook_url"],
        )
        for url in [
            "http://93.184.216.34/hook",
            "ftp://93.184.216.34/hook",
            "https://" + "a" * 2050 + ".com/",
            "https://user:pw@93.184.216.34/hook",
            "https:///no-host",
            # The SSRF rule: addresses that are not public, literal or resolved.
            "https://127.0.0.1/hook",
            "https://localhost/hook",
            "https://10.1.2.3/hook",
            "https://192.168.0.10/hook",
            "https://172.16.5.4/hook",
            "https://169.254.169.254/latest/meta-data/",
            "https://100.64.0.1/hook",
            "https://0.0.0.0/hook",
            "https://[::1]/hook",
            "https://[fd00:ec2::254]/hook",
            "https://[fe80::1]/hook",
            "https://[::ffff:127.0.0.1]/hook",
            "https://224.0.0.1/hook",
            "https://does-not-resolve.invalid/hook",
        ]
    ],
    # Several problems at once are all reported.
    (
        "",
        {"condition": price_above(-1), "note": "n" * 501},
        ["alert.symbol", "alert.condition.price_above.price", "alert.note"],
    ),
]


@pytest.mark.parametrize(("symbol", "fields", "violated"), CASES)
async def test_bad_alerts_are_refused_and_nothing_is_written(
    stack: Stack, symbol: str, fields: dict[str, Any], violated: list[str]
) -> None:
    owner = await stack.account()
    if symbol == OCC:
        symbol = await stack.option_symbol(owner)
    fields.setdefault("condition", price_above())
    await invalid(owner.create(symbol, **fields), *violated)
    assert await owner.list_all() == []


async def test_bad_updates_are_refused_and_nothing_is_written(stack: Stack) -> None:
    owner = await stack.account()
    alert = (await owner.create()).alert

    def update(**fields: Any) -> alert_service_pb2.UpdateAlertRequest:
        paths = [p for p in fields if p != "delivery"] + (
            ["delivery.webhook_url"] if "delivery" in fields else []
        )
        return alert_service_pb2.UpdateAlertRequest(
            alert=alert_pb2.Alert(name=alert.name, **fields),
            update_mask=field_mask_pb2.FieldMask(paths=paths),
        )

    for request, field in [
        (update(condition=price_above(math.nan)), "alert.condition.price_above.price"),
        (update(condition=C()), "alert.condition"),
        (update(expire_time=_ts(-timedelta(seconds=1))), "alert.expire_time"),
        (
            update(delivery=alert_pb2.AlertDelivery(webhook_url="https://127.0.0.1/")),
            "alert.delivery.webhook_url",
        ),
        (update(note="\x00"), "alert.note"),
    ]:
        await invalid(owner.alerts.UpdateAlert(request), field)
    assert (await owner.list_all()) == [alert]
