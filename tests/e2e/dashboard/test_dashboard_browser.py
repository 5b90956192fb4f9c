"""The dashboard in a real browser (Chromium via Playwright) against a real `proxynow run`.

The page is opened on the `traefik` entrypoint, where `/` redirects to `/dashboard/`;
everything it shows comes through the data plane from the control plane's API and its
event stream. Waits are Playwright's own (it polls the DOM until a condition holds),
never sleeps.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.support.proc import HttpBackend, ProxynowProcess, http_get

Start = Callable[..., ProxynowProcess]

XSS_ROUTER = "<img src=x onerror=window.__xss=1>"
XSS_SERVICE = "<script>window.__xss=2</script>"
TIMEOUT_MS = 20_000
NO_DATA = "\u2013"  # what a live value shows before its first frame (an en dash)


def dynamic(backend: HttpBackend) -> dict[str, Any]:
    return {
        "http": {
            "routers": {
                "app": {"rule": "Host(`app.test`)", "service": "app"},
                "broken": {"rule": "Host(`x`", "service": "app"},
                "lost": {"rule": "Host(`lost.test`)", "service": "missing"},
                XSS_ROUTER: {"rule": "Host(`<b>bold</b>`)", "service": XSS_SERVICE},
            },
            "services": {"app": {"loadBalancer": {"servers": [{"url": backend.url}]}}},
        }
    }


STATIC = {
    "entryPoints": {"web": {"address": "127.0.0.1:0"}, "traefik": {"address": "127.0.0.1:0"}},
    "api": {"insecure": True},
}


@pytest.fixture
def backend() -> Iterator[HttpBackend]:
    with HttpBackend("app") as server:
        yield server


@pytest.fixture
def proxy(proxynow_factory: Start, backend: HttpBackend) -> ProxynowProcess:
    return proxynow_factory(STATIC, dynamic(backend), workers=2)


def open_dashboard(page: Page, proxy: ProxynowProcess, fragment: str = "") -> None:
    """Open `/` (redirected to /dashboard/) and wait for the stream to be connected."""
    origin = f"http://127.0.0.1:{proxy.ports['traefik']}"
    page.goto(origin + "/")
    assert page.url == origin + "/dashboard/"
    if fragment:
        page.goto(origin + "/dashboard/" + fragment)
    expect(page.locator("#live")).to_have_text("live", timeout=TIMEOUT_MS)


class Traffic:
    """Requests to `app.test` through the proxy, in a thread, until stopped."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            assert http_get(self.port, "/", "app.test")[0] == 200
            self.sent += 1
            self._stop.wait(0.01)  # pacing: about 100 requests per second

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def test_loads_with_a_router_from_the_file_and_its_error(
    page: Page, proxy: ProxynowProcess
) -> None:
    open_dashboard(page, proxy, "#/http/routers")
    expect(page.locator('tr[data-name="app@file"]')).to_be_visible(timeout=TIMEOUT_MS)
    broken = page.locator('tr[data-name="broken@file"]')
    expect(broken).to_contain_text("disabled")
    expect(broken).to_contain_text("rule: ")
    lost = page.locator('tr[data-name="lost@file"]')
    expect(lost).to_contain_text("service missing@file does not exist")
    # Errors first: the disabled routers come before the enabled ones.
    names = page.locator("tr.row").evaluate_all("rows => rows.map(r => r.dataset.name)")
    assert names.index("lost@file") < names.index("app@file")
    # And on top of every page: the banner counts them.
    expect(page.locator("#banner-count")).to_have_text("3 errors")
    page.locator('tr[data-name="lost@file"] a').first.click()
    expect(page.locator("#item-errors")).to_contain_text("service missing@file does not exist")


def test_a_router_added_to_the_file_appears_without_reload(
    page: Page, proxy: ProxynowProcess, backend: HttpBackend
) -> None:
    open_dashboard(page, proxy, "#/http/routers")
    expect(page.locator('tr[data-name="app@file"]')).to_be_visible(timeout=TIMEOUT_MS)
    page.evaluate("window.__same_page = true")
    config = dynamic(backend)
    config["http"]["routers"]["late"] = {"rule": "Host(`late.test`)", "service": "app"}
    proxy.write_dynamic(config)
    expect(page.locator('tr[data-name="late@file"]')).to_be_visible(timeout=TIMEOUT_MS)
    assert page.evaluate("window.__same_page") is True  # no reload happened


def test_rates_move_while_traffic_flows(
    page: Page, proxy: ProxynowProcess, artifacts: Path
) -> None:
    open_dashboard(page, proxy, "#/http/routers/" + "app%40file")
    value = page.locator('[data-chart="routers|app@file|rps"] .value')
    expect(value).to_have_text(NO_DATA, timeout=TIMEOUT_MS)  # no traffic yet
    with Traffic(proxy.ports["web"]) as traffic:
        expect(value).to_have_text(re.compile(r"^(?:[1-9]|0\.[1-9]|0\.0[1-9])"), timeout=TIMEOUT_MS)
        moving = page.locator('[data-chart="routers|app@file|rps"] svg path.line')
        expect(moving).to_have_count(1)
        page.goto(page.url.split("#")[0] + "#/http/routers")
        cell = page.locator('[data-rate="routers|app@file"] .rate-value')
        expect(cell).to_have_text(re.compile(r"^[0-9.]+/s$"), timeout=TIMEOUT_MS)
        expect(cell).not_to_have_text("0.00/s", timeout=TIMEOUT_MS)
        shot = artifacts / "dashboard-routers.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"dashboard screenshot: {shot}")
        assert shot.stat().st_size > 10_000
    assert traffic.sent > 0


def test_names_and_errors_are_text_not_html(page: Page, proxy: ProxynowProcess) -> None:
    open_dashboard(page, proxy, "#/http/routers")
    row = page.locator("tr.row").filter(has_text=XSS_ROUTER)
    expect(row).to_have_count(1, timeout=TIMEOUT_MS)
    expect(row).to_contain_text(f"service {XSS_SERVICE}@file does not exist")
    expect(row).to_contain_text("Host(`<b>bold</b>`)")
    row.locator("a").first.click()
    expect(page.locator("h1")).to_contain_text(XSS_ROUTER)
    expect(page.locator("#item-errors")).to_contain_text(XSS_SERVICE)
    injected = "document.querySelectorAll('main img, main script, main b, #banner img').length"
    assert page.evaluate(injected) == 0
    assert page.evaluate("typeof window.__xss") == "undefined"


def test_phone_layout_dark_theme_and_certificates(
    browser: Any, proxy: ProxynowProcess, artifacts: Path
) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, color_scheme="dark", is_mobile=True
    )
    try:
        page = context.new_page()
        open_dashboard(page, proxy)
        expect(page.locator("h1")).to_have_text("Overview")
        background = "getComputedStyle(document.body).backgroundColor"
        dark = page.evaluate(background)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.locator("#theme").click()  # to light, kept across reloads
        assert page.evaluate(background) != dark
        page.reload()
        expect(page.locator("#live")).to_have_text("live", timeout=TIMEOUT_MS)
        assert page.evaluate(background) != dark
        page.goto(page.url.split("#")[0] + "#/certificates")
        expect(page.locator("#certificates")).to_contain_text("No certificate.")
        shot = artifacts / "dashboard-phone.png"
        page.screenshot(path=str(shot))
        print(f"dashboard phone screenshot: {shot}")
    finally:
        context.close()
