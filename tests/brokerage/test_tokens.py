"""Provider tokens sealed at rest: AES-GCM under a key id, several keys, rotation, tampering."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path

import pytest

from optix_server.brokerage.config import ConnectorSettings, SchwabSettings, parse_token_keys
from optix_server.brokerage.connectors.base import TokenSet
from optix_server.brokerage.tokens import (
    SealedValue,
    TokenBox,
    TokenKey,
    build_token_box,
    reseal_all,
    token_context,
)
from optix_server.infra.env import SettingsError

K1 = TokenKey("k1", b"1" * 32)
K2 = TokenKey("k2", b"2" * 32)
TOKEN = "RT-very-secret-refresh-token-value"
CONTEXT = token_context("conn-1", "refresh")


def test_round_trip_with_the_key_id_in_front() -> None:
    box = TokenBox([K1])
    sealed = box.seal(TOKEN, CONTEXT)
    assert sealed.startswith("k1:") and TokenBox.key_id_of(sealed) == "k1"
    assert box.open(sealed, CONTEXT) == TOKEN
    assert box.seal(TOKEN, CONTEXT) != sealed  # a fresh nonce every time
    # Nothing of the plaintext shows, in clear or in base64.
    assert TOKEN not in sealed and "secret" not in sealed
    assert base64.b64encode(TOKEN.encode()).decode()[:16] not in sealed


def test_tampering_and_other_contexts_do_not_open() -> None:
    box = TokenBox([K1])
    sealed = box.seal(TOKEN, CONTEXT)
    assert box.open(sealed, token_context("conn-2", "refresh")) is None
    assert box.open(sealed, token_context("conn-1", "access")) is None
    body = sealed[-10:]
    flipped = sealed[:-10] + ("A" if body[0] != "A" else "B") + body[1:]
    assert box.open(flipped, CONTEXT) is None
    assert box.open("k9:" + sealed[3:], CONTEXT) is None
    for junk in ("", "k1:", "k1:v1:not base64!", "plain", TOKEN):
        assert box.open(junk, CONTEXT) is None


def test_rotation_old_rows_still_open_and_reseal_moves_them() -> None:
    old = TokenBox([K1]).seal(TOKEN, CONTEXT)
    rotated = TokenBox([K2, K1])
    assert rotated.current_key_id == "k2"
    assert rotated.open(old, CONTEXT) == TOKEN
    assert rotated.needs_reseal(old)
    fresh = rotated.reseal(old, CONTEXT)
    assert fresh is not None and fresh.startswith("k2:")
    assert rotated.reseal(fresh, CONTEXT) == fresh  # already current: unchanged
    assert TokenBox([K2]).open(fresh, CONTEXT) == TOKEN
    assert TokenBox([K2]).open(old, CONTEXT) is None  # k1 retired: old rows no longer open
    assert rotated.reseal(old, "another context") is None
    with pytest.raises(ValueError):
        TokenBox([K1, TokenKey("k1", b"3" * 32)])
    with pytest.raises(ValueError):
        TokenBox([])


class FakeStore:
    """A SealedValueStore over a dict, with one value changed by "someone else" mid-pass."""

    def __init__(self, rows: dict[str, tuple[str, str]], racing: str, race_value: str) -> None:
        self.rows = rows
        self.racing = racing
        self.race_value = race_value

    async def sealed_values(self, after: str | None, limit: int) -> Sequence[SealedValue]:
        keys = sorted(k for k in self.rows if after is None or k > after)[:limit]
        return [SealedValue(k, self.rows[k][0], self.rows[k][1]) for k in keys]

    async def replace_sealed(self, row_key: str, expected: str, replacement: str) -> bool:
        context, current = self.rows[row_key]
        if row_key == self.racing:
            current = self.race_value
            self.rows[row_key] = (context, current)
        if current != expected:
            return False
        self.rows[row_key] = (context, replacement)
        return True


async def test_reseal_all_rewrites_every_row_under_the_current_key() -> None:
    old, new = TokenBox([K1]), TokenBox([K2, K1])
    contexts = {f"r{i}": token_context(f"conn-{i}", "access") for i in range(5)}
    rows = {k: (c, old.seal(f"token-{k}", c)) for k, c in contexts.items()}
    rows["r1"] = (contexts["r1"], new.seal("token-r1", contexts["r1"]))
    rows["r2"] = (contexts["r2"], rows["r2"][1][:-4] + "AAAA")  # tampered
    # r3's token is refreshed (and sealed anew) between the pass's read and its write.
    store = FakeStore(rows, "r3", new.seal("token-r3-refreshed", contexts["r3"]))
    report = await reseal_all(store, new, batch_size=2)
    assert (report.scanned, report.resealed, report.skipped) == (5, 2, 1)
    assert report.unreadable == ["r2"]
    for key in ("r0", "r1", "r4"):
        context, sealed = store.rows[key]
        assert sealed.startswith("k2:") and new.open(sealed, context) == f"token-{key}"
    assert new.open(store.rows["r3"][1], contexts["r3"]) == "token-r3-refreshed"
    again = await reseal_all(store, new)
    assert (again.resealed, again.unreadable) == (0, ["r2"])


def test_token_keys_from_the_environment() -> None:
    raw = f"k2:{base64.b64encode(b'2' * 32).decode()}, k1:{base64.b64encode(b'1' * 40).decode()}"
    keys = parse_token_keys(raw)
    assert [k.key_id for k in keys] == ["k2", "k1"]
    assert keys[1].secret == b"1" * 40
    assert "2222" not in repr(keys[0])
    settings = ConnectorSettings.from_env({"OPTIX_BROKERAGE_TOKEN_KEYS": raw})
    assert TokenBox(settings.token_keys).current_key_id == "k2"
    short = base64.b64encode(b"x" * 8).decode()
    for bad in (f"k1:{short}", "k1:!!!", "no-separator", f"bad id:{short}", f"{raw},{raw}"):
        with pytest.raises(SettingsError) as info:
            parse_token_keys(bad)
        assert short not in str(info.value)
    assert parse_token_keys("") == ()


def test_fallback_key_file_is_created_once(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "brokerage-tokens"
    first = build_token_box((), path)
    sealed = first.seal(TOKEN, CONTEXT)
    assert first.current_key_id == "local"
    assert build_token_box((), path).open(sealed, CONTEXT) == TOKEN
    assert build_token_box((K1,), path).current_key_id == "k1"


def test_secrets_stay_out_of_reprs() -> None:
    tokens = TokenSet("AT-secret", None, "RT-secret", None)
    settings = SchwabSettings(client_id="id", client_secret="the-client-secret")
    assert "secret" not in repr(tokens).replace("TokenSet", "")
    assert "the-client-secret" not in repr(settings)


def test_schwab_settings_from_env() -> None:
    prefix = "OPTIX_BROKERAGE_SCHWAB_"
    settings = SchwabSettings.from_env(
        {
            prefix + "CLIENT_ID": "app",
            prefix + "CLIENT_SECRET": "s",
            prefix + "REDIRECT_URIS": "https://a.example/cb, https://b.example/cb",
            prefix + "OAUTH_URL": "http://127.0.0.1:9/v1/oauth/",
            prefix + "REQUESTS_PER_MINUTE": "60",
            prefix + "PKCE": "false",
        }
    )
    assert settings.enabled and not settings.pkce
    assert settings.redirect_uris == ("https://a.example/cb", "https://b.example/cb")
    assert settings.oauth_url == "http://127.0.0.1:9/v1/oauth"
    assert settings.requests_per_minute == 60
    assert not SchwabSettings.from_env({}).enabled
    with pytest.raises(SettingsError):
        SchwabSettings.from_env({prefix + "REDIRECT_URIS": "/relative/callback"})
