"""Fixtures for the ACME tests: Pebble per test, and thread-based challenge answerers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.acme.responders import Responders
from tests.support.pebble import pebble_factory

__all__ = ["pebble_factory"]  # the fixture, re-exported for pytest


@pytest.fixture
def responders(tmp_path: Path) -> Iterator[Responders]:
    answering = Responders(tmp_path)
    try:
        yield answering
    finally:
        answering.close()
