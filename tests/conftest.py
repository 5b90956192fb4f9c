"""The suite runs against whichever build of the hot path is installed (docs/compiled.md):
the mypyc-compiled modules, or pure Python (`PROXYNOW_PURE_PYTHON=1`, or no build)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from proxynow import compiled


def pytest_report_header() -> str:
    return "proxynow hot path: " + compiled.describe()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that monkeypatches a hot-path function (marked `patches_hot_path`) cannot
    patch compiled code, which binds its calls at build time: against a compiled build it
    runs in a pytest of its own on the pure-Python modules of the same install, and fails
    here if it fails there. Never skipped."""
    if not compiled.build().compiled:
        return
    for item in items:
        if item.get_closest_marker("patches_hot_path") is not None and isinstance(
            item, pytest.Function
        ):
            item.runtest = _in_pure_python(item.nodeid)  # type: ignore[method-assign]


def _in_pure_python(nodeid: str) -> object:
    def runtest() -> None:
        env = {**os.environ, "PROXYNOW_PURE_PYTHON": "1"}
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", nodeid]
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
        if done.returncode != 0:
            raise AssertionError(f"{nodeid} failed on pure Python:\n{done.stdout[-4000:]}")

    return runtest
