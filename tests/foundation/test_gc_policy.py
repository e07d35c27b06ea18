"""The serving process's garbage-collector policy and its setting."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from optix_server.infra.env import SettingsError
from optix_server.infra.gc_policy import DEFAULT_YOUNG_THRESHOLD, apply_gc_policy
from optix_server.infra.settings import Settings


@pytest.fixture
def restored_gc() -> Iterator[None]:
    """Leave the test process's collector as it was."""
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_gc")
def test_the_policy_freezes_the_heap_and_raises_the_young_threshold() -> None:
    apply_gc_policy(12_345)
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == 12_345


@pytest.mark.usefixtures("restored_gc")
def test_zero_keeps_the_interpreter_thresholds() -> None:
    before = gc.get_threshold()
    apply_gc_policy(0)
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before


def test_the_threshold_is_a_setting() -> None:
    assert Settings.from_env({}).gc_young_threshold == DEFAULT_YOUNG_THRESHOLD
    assert Settings.from_env({"OPTIX_GC_YOUNG_THRESHOLD": "0"}).gc_young_threshold == 0
    with pytest.raises(SettingsError, match="OPTIX_GC_YOUNG_THRESHOLD"):
        Settings.from_env({"OPTIX_GC_YOUNG_THRESHOLD": "-1"})
