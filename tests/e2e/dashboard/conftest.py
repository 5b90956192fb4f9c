"""Fixtures of the dashboard's browser tests: Debian's Chromium driven by Playwright.

Playwright is imported at module level and a missing `/usr/bin/chromium` fails the
tests: both are test dependencies (pyproject.toml's `test` extra, `.ci/run`'s apt
packages), so their absence is an error to see, never a reason to skip. `playwright
install` cannot download here, so the system's Chromium is launched (see
/work/shared/ENVIRONMENT.md, "Browser tests"); `--no-sandbox` because tests run as root.

`artifacts` is the directory screenshots go to: `$PROXYNOW_TEST_ARTIFACTS` when set (CI
keeps it), else the test's tmp_path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.support.proc import proxynow_factory

__all__ = ["artifacts", "browser", "page", "proxynow_factory"]

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (see .ci/run)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield opened
    finally:
        context.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    configured = os.environ.get("PROXYNOW_TEST_ARTIFACTS")
    directory = Path(configured) if configured else tmp_path / "artifacts"
    directory.mkdir(parents=True, exist_ok=True)
    return directory
