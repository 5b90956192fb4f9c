"""Fixtures for the ACME tests: Pebble per test, and thread-based challenge answerers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acme.pebble import PebbleFactory
from tests.acme.responders import Responders


@pytest.fixture
def pebble_factory(tmp_path: Path) -> Iterator[PebbleFactory]:
    factory = PebbleFactory(tmp_path)
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture
def responders(tmp_path: Path) -> Iterator[Responders]:
    answering = Responders(tmp_path)
    try:
        yield answering
    finally:
        answering.close()
