"""Sticky sessions end to end: `proxynow run` with a file configuration and real backends."""

from __future__ import annotations

import hashlib
import http.client
import subprocess
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.support.proc import HttpBackend, ProxynowProcess, poll, proxynow_factory
from tests.unit.edge.balance.test_sticky import reference_hrw

__all__ = ["proxynow_factory"]  # the fixture, re-exported for pytest

Start = Callable[..., ProxynowProcess]
STATIC = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}}


@pytest.fixture
def backends() -> Iterator[list[HttpBackend]]:
    servers = [HttpBackend(f"b{i}") for i in range(1, 4)]
    try:
        yield servers
    finally:
        for server in servers:
            server.close()


def get(port: int, host: str, cookie: str | None = None) -> tuple[str, list[str]]:
    """One request on a new connection: (the backend's name, the Set-Cookie headers)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    headers = {"Host": host, "Connection": "close"}
    if cookie is not None:
        headers["Cookie"] = cookie
    try:
        connection.request("GET", "/", headers=headers)
        response = connection.getresponse()
        body = response.read().decode()
        assert response.status == 200, body
        return body.split()[0], response.headers.get_all("Set-Cookie") or []
    finally:
        connection.close()


def value(key: str) -> str:
    """The cookie value naming a server URL or a service (Traefik v3: SHA-256, 16 hex)."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def lb(servers: Sequence[HttpBackend], cookie: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"servers": [{"url": s.url} for s in servers]}
    if cookie is not None:
        spec["sticky"] = {"cookie": cookie}
    return {"loadBalancer": spec}


def dynamic(services: dict[str, Any]) -> dict[str, Any]:
    routers = {name: {"rule": f"Host(`{name}.test`)", "service": name} for name in services}
    return {"http": {"routers": routers, "services": services}}


def by_url(backends: list[HttpBackend]) -> dict[str, str]:
    return {value(b.url): b.name for b in backends}


def test_the_first_response_sets_the_cookie_and_it_keeps_the_backend(
    proxynow_factory: Start, backends: list[HttpBackend]
) -> None:
    proxy = proxynow_factory(STATIC, dynamic({"app": lb(backends, {"name": "lb"})}), workers=2)
    port = proxy.ports["web"]
    names = by_url(backends)
    first, cookies = get(port, "app.test")
    assert len(cookies) == 1
    pair, _, attributes = cookies[0].partition("; ")
    assert attributes == "Path=/"
    name, _, cookie_value = pair.partition("=")
    assert name == "lb"
    assert names[cookie_value] == first
    # New connections (spread over both workers): always the same backend, no new cookie.
    for _ in range(12):
        assert get(port, "app.test", f"other=1; lb={cookie_value}") == (first, [])
    # Every backend can be stuck to, each with its own cookie.
    for backend in backends:
        assert get(port, "app.test", f"lb={value(backend.url)}") == (backend.name, [])


def test_an_unknown_or_stale_cookie_is_rebalanced_with_a_new_cookie(
    proxynow_factory: Start, backends: list[HttpBackend]
) -> None:
    proxy = proxynow_factory(STATIC, dynamic({"app": lb(backends, {"name": "lb"})}), workers=1)
    port = proxy.ports["web"]
    names = by_url(backends)
    gone = value("http://127.0.0.1:1")  # a server that left the configuration
    served = set()
    for stale in ("0123456789abcdef", gone, "", "http://nowhere"):
        backend, cookies = get(port, "app.test", f"lb={stale}")
        assert len(cookies) == 1
        fresh = cookies[0].split(";")[0].removeprefix("lb=")
        assert names[fresh] == backend
        served.add(backend)
    assert len(served) > 1  # re-balanced, not sent to one default


def test_an_old_traefik_cookie_is_honoured_and_rewritten(
    proxynow_factory: Start, backends: list[HttpBackend]
) -> None:
    proxy = proxynow_factory(STATIC, dynamic({"app": lb(backends, {"name": "lb"})}), workers=1)
    target = backends[2]
    backend, cookies = get(proxy.ports["web"], "app.test", f"lb={target.url}")
    assert backend == target.name
    assert cookies == [f"lb={value(target.url)}; Path=/"]


def test_cookie_attributes_and_the_default_name(
    proxynow_factory: Start, backends: list[HttpBackend]
) -> None:
    options = {
        "name": "sess",
        "secure": True,
        "httpOnly": True,
        "sameSite": "strict",
        "maxAge": 3600,
        "path": "/app",
        "domain": "example.test",
    }
    services = {
        "full": lb(backends, options),
        "expire": lb(backends, {"name": "gone", "maxAge": -1, "sameSite": "none"}),
        "unnamed": lb(backends, {}),
        "plain": lb(backends),
    }
    proxy = proxynow_factory(STATIC, dynamic(services), workers=1)
    port = proxy.ports["web"]
    backend, cookies = get(port, "full.test")
    url = next(b.url for b in backends if b.name == backend)
    assert cookies == [
        f"sess={value(url)}; Path=/app; Domain=example.test; Max-Age=3600; HttpOnly; Secure;"
        " SameSite=Strict"
    ]
    backend, cookies = get(port, "expire.test")
    url = next(b.url for b in backends if b.name == backend)
    assert cookies == [f"gone={value(url)}; Path=/; Max-Age=0; SameSite=None"]
    # No name: Traefik's derivation from the qualified service name.
    name = "_" + hashlib.sha1(b"_TRAEFIK_BACKEND_unnamed@file").hexdigest()[:5]
    backend, cookies = get(port, "unnamed.test")
    url = next(b.url for b in backends if b.name == backend)
    assert cookies == [f"{name}={value(url)}; Path=/"]
    # A service without sticky sends no cookie and ignores one.
    for _ in range(3):
        assert get(port, "plain.test", f"{name}={value(url)}; lb=x")[1] == []


def test_nested_weighted_and_load_balancer_stickiness(
    proxynow_factory: Start, backends: list[HttpBackend]
) -> None:
    services = {
        "left": lb(backends[:2], {"name": "inner"}),
        "right": lb(backends[2:], {"name": "inner2"}),
        "outer": {
            "weighted": {
                "services": [{"name": "left", "weight": 1}, {"name": "right", "weight": 1}],
                "sticky": {"cookie": {"name": "outer"}},
            }
        },
    }
    proxy = proxynow_factory(STATIC, dynamic(services), workers=1)
    port = proxy.ports["web"]
    children = {value("left@file"): "left", value("right@file"): "right"}
    for _ in range(2):  # two sessions
        backend, cookies = get(port, "outer.test")
        pairs = dict(c.split(";")[0].split("=", 1) for c in cookies)
        child = children[pairs["outer"]]
        assert (backend in ("b1", "b2")) == (child == "left")
        inner_name = "inner" if child == "left" else "inner2"
        assert by_url(backends)[pairs[inner_name]] == backend
        jar = "; ".join(f"{k}={v}" for k, v in pairs.items())
        for _ in range(6):
            assert get(port, "outer.test", jar) == (backend, [])
        # Only the outer cookie: the child is kept, the inner level sets its own cookie.
        kept, cookies = get(port, "outer.test", f"outer={pairs['outer']}")
        assert (kept in ("b1", "b2")) == (child == "left")
        assert [c.split("=")[0] for c in cookies] == [inner_name]


def test_curl_with_a_cookie_jar_sticks(
    proxynow_factory: Start, backends: list[HttpBackend], tmp_path: Path
) -> None:
    proxy = proxynow_factory(STATIC, dynamic({"app": lb(backends, {"name": "lb"})}), workers=1)
    url = f"http://127.0.0.1:{proxy.ports['web']}/"
    jar = tmp_path / "jar.txt"
    command = ["curl", "-sS", "--max-time", "20", "-H", "Host: app.test", "-b", str(jar)]
    seen = set()
    for _ in range(6):
        result = subprocess.run(
            [*command, "-c", str(jar), url], capture_output=True, check=True, text=True
        )
        seen.add(result.stdout.split()[0])
    assert len(seen) == 1
    assert "\tlb\t" in jar.read_text()
    # Without the jar: balanced over the backends again.
    plain = {
        subprocess.run([*command[:6], url], capture_output=True, check=True, text=True).stdout
        for _ in range(6)
    }
    assert len(plain) > 1


def test_strategy_hrw_keeps_a_client_ip_on_one_backend(
    proxynow_factory: Start, backends: list[HttpBackend]
) -> None:
    service = lb(backends)
    service["loadBalancer"]["strategy"] = "hrw"
    proxy = proxynow_factory(STATIC, dynamic({"app": service}), workers=2)
    urls = [b.url for b in backends]
    expected = next(b.name for b in backends if b.url == reference_hrw("127.0.0.1", urls, [1] * 3))
    for _ in range(10):  # new connections, over both workers
        assert get(proxy.ports["web"], "app.test") == (expected, [])


def test_a_cookie_for_a_down_server_is_rebalanced_until_it_is_back(
    proxynow_factory: Start,
) -> None:
    a, b = HttpBackend("a"), HttpBackend("b")
    try:
        check = {"path": "/health", "interval": "100ms", "timeout": "1s"}
        service = lb([a, b], {"name": "lb"})
        service["loadBalancer"]["healthCheck"] = check
        proxy = proxynow_factory(STATIC, dynamic({"app": service}), workers=2)
        port, jar = proxy.ports["web"], f"lb={value(b.url)}"
        assert get(port, "app.test", jar) == ("b", [])
        b.healthy = False
        moved = [f"lb={value(a.url)}; Path=/"]
        poll(lambda: get(port, "app.test", jar) == ("a", moved), 20, "b's clients to move")
        assert all(get(port, "app.test", jar) == ("a", moved) for _ in range(4))
        b.healthy = True
        poll(lambda: get(port, "app.test", jar) == ("b", []), 20, "b's clients to return")
    finally:
        a.close()
        b.close()
