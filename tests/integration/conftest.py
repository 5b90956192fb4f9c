"""Fixtures shared by the edge tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.support_http import LoopThread, loop_thread


@pytest.fixture
def lt() -> Iterator[LoopThread]:
    """An event loop running in a thread of its own, stopped after the test."""
    with loop_thread() as thread:
        yield thread
