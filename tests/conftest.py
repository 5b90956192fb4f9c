"""The suite runs against whichever build of the hot path is installed (docs/compiled.md):
the mypyc-compiled modules, or pure Python (`PROXYNOW_PURE_PYTHON=1`, or no build)."""

from __future__ import annotations

import pytest

from proxynow import compiled

_PURE_ONLY = pytest.mark.skip(
    reason="patches a hot-path function, which compiled code binds at build time: "
    "runs in the pure-Python pass (scripts/test.sh, PROXYNOW_TEST_PURE)"
)


def pytest_report_header() -> str:
    return "proxynow hot path: " + compiled.describe()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Listed as skipped (-ra) with the reason when compiled; run when pure."""
    if compiled.build().compiled:
        for item in items:
            if item.get_closest_marker("patches_hot_path") is not None:
                item.add_marker(_PURE_ONLY)
