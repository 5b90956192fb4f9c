"""Fixtures for the harness tests: a run directory and a running backend (real nginx)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.harness import Cores, Harness, Timing


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    # nginx workers run as an unprivileged user and must read the bodies written here.
    for directory in (tmp_path, *tmp_path.parents):
        if directory == Path("/tmp") or directory == Path("/"):
            break
        directory.chmod(0o755)
    return tmp_path


@pytest.fixture
def harness(workdir: Path) -> Iterator[Harness]:
    bench = Harness(workdir, Cores("0", "1", "0,1"), Timing(duration=1, warmup=1))
    bench.start_backend()
    try:
        yield bench
    finally:
        bench.stop_backend()
