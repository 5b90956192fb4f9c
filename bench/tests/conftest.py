"""Fixtures for the harness tests: a run directory and a running backend (real nginx)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.harness import Cores, Harness, Timing


@pytest.fixture
def workdir() -> Iterator[Path]:
    # nginx workers run as an unprivileged user and must read the bodies written here. Not
    # under tmp_path: every pytest start resets /tmp/pytest-of-<user> to 0700, which would cut
    # a running nginx off from its files whenever another pytest run begins on the machine.
    directory = Path(tempfile.mkdtemp(prefix="proxynow-bench-test-"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def harness(workdir: Path) -> Iterator[Harness]:
    bench = Harness(workdir, Cores("0", "1", "0,1"), Timing(duration=1, warmup=1))
    try:
        bench.start_backend()
        yield bench
    finally:
        bench.stop_backend()
