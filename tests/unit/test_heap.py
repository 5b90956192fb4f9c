"""`collecting_later`: the cyclic collector is off inside, on again after the last of
nested blocks (threads nest them), and what was alive is frozen."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from proxynow.heap import collecting_later


@pytest.fixture(autouse=True)
def restored() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    if enabled:
        gc.enable()


def test_the_collector_is_off_inside_and_on_after_the_last_block() -> None:
    gc.enable()
    gc.unfreeze()
    with collecting_later():
        assert not gc.isenabled()
        with collecting_later():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer block still runs
    assert gc.isenabled()
    assert gc.get_freeze_count() > 0


def test_a_small_configuration_leaves_the_collector_alone() -> None:
    gc.enable()
    gc.unfreeze()
    with collecting_later(large=False):
        assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with collecting_later():
        pass
    assert not gc.isenabled()
