"""Where the dashboard's files are served, through a real `proxynow run`, and the pure
answer of proxynow/api/dashboard.py: redirects, files, 404, the security headers."""

from __future__ import annotations

from collections.abc import Callable

from proxynow.api.dashboard import CSP, Assets, dashboard_answer
from tests.e2e.api.test_api_run import api, request
from tests.support.proc import ProxynowProcess, proxynow_factory

__all__ = ["proxynow_factory"]

Start = Callable[..., ProxynowProcess]

ENTRYPOINTS = {"web": {"address": "127.0.0.1:0"}, "traefik": {"address": "127.0.0.1:0"}}
DYNAMIC = {
    "http": {
        "routers": {
            "mine": {"rule": "Host(`proxy.test`)", "service": "api@internal"},
        }
    }
}


def test_the_files_and_redirects() -> None:
    assets = Assets.load()
    assert sorted(assets.files) == ["app.css", "app.js", "index.html"]
    for base in ("", "/proxy"):
        for path in (base or "/", base + "/", base + "/dashboard"):
            moved = dashboard_answer(assets, base, path)
            assert (moved.status, moved.headers["Location"]) == (301, f"{base}/dashboard/")
        page = dashboard_answer(assets, base, base + "/dashboard/")
        assert page.status == 200 and page.content_type == "text/html; charset=utf-8"
        assert page.body == assets.files["index.html"][1]
        assert page.headers["Content-Security-Policy"] == CSP
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        script = dashboard_answer(assets, base, base + "/dashboard/app.js")
        assert script.content_type == "text/javascript; charset=utf-8"
        assert dashboard_answer(assets, base, base + "/dashboard/nope.js").status == 404
        assert dashboard_answer(assets, base, base + "/dashboard/../server.py").status == 404
        assert dashboard_answer(assets, base, base + "/elsewhere").status == 404
    # The page uses no inline script or style, so the policy needs no 'unsafe-inline'.
    html = assets.files["index.html"][1].decode()
    assert "<script>" not in html and "style=" not in html and "'unsafe-inline'" not in CSP


def test_served_on_traefik_and_through_a_router_to_api_internal(proxynow_factory: Start) -> None:
    proxy = proxynow_factory(
        {"entryPoints": ENTRYPOINTS, "api": {"insecure": True}}, DYNAMIC, workers=1
    )
    port = proxy.ports["traefik"]
    status, headers, _ = request(port, "/")
    assert (status, headers["Location"]) == (301, "/dashboard/")
    status, headers, _ = request(port, "/dashboard")
    assert (status, headers["Location"]) == (301, "/dashboard/")
    status, headers, body = request(port, "/dashboard/")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert b'<script src="app.js" defer></script>' in body
    assert headers["Content-Security-Policy"] == CSP
    assert request(port, "/dashboard/app.css")[1]["Content-Type"] == "text/css; charset=utf-8"
    assert request(port, "/elsewhere")[0] == 404
    # A user's router to api@internal serves the dashboard too, as Traefik v3's does.
    status, _, body = request(proxy.ports["web"], "/dashboard/", host="proxy.test")
    assert status == 200 and b"proxynow dashboard" in body
    router = api(proxy, "/api/http/routers/dashboard%40internal")
    assert (router["rule"], router["priority"]) == ("PathPrefix(`/`)", 2**63 - 3)
    assert "proxynow: dashboard on http://127.0.0.1:" in proxy.stderr()


def test_base_path_and_dashboard_off(proxynow_factory: Start) -> None:
    static = {"entryPoints": ENTRYPOINTS, "api": {"insecure": True, "basePath": "/proxy"}}
    proxy = proxynow_factory(static, DYNAMIC, workers=1)
    port = proxy.ports["traefik"]
    assert request(port, "/proxy/")[1]["Location"] == "/proxy/dashboard/"
    assert request(port, "/proxy/dashboard/")[0] == 200
    assert request(port, "/dashboard/")[0] == 404
    off = {"entryPoints": ENTRYPOINTS, "api": {"insecure": True, "dashboard": False}}
    plain = proxynow_factory(off, DYNAMIC, workers=1)
    assert request(plain.ports["traefik"], "/dashboard/")[0] == 404
    assert request(plain.ports["web"], "/dashboard/", host="proxy.test")[0] == 404
    names = [r["name"] for r in api(plain, "/api/http/routers")]
    assert "dashboard@internal" not in names and "api@internal" in names
    assert "dashboard on" not in plain.stderr()
