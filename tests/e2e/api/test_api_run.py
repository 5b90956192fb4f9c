"""The API and /ping through a real `proxynow run`: entrypoint `traefik`, routers to
`api@internal`, statuses, paging, filters, health, and /ping while draining."""

from __future__ import annotations

import http.client
import json
import signal
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.proc import HttpBackend, ProxynowProcess, poll, proxynow_factory
from tests.unit.api.test_endpoints import SECRETS

__all__ = ["proxynow_factory"]

Start = Callable[..., ProxynowProcess]


def static(**extra: Any) -> dict[str, Any]:
    return {
        "entryPoints": {
            "web": {"address": "127.0.0.1:0"},
            "traefik": {
                "address": "127.0.0.1:0",
                # Long enough to see /ping answer 503 while the listeners still accept.
                "transport": {"lifeCycle": {"requestAcceptGraceTimeout": "3s"}},
            },
        },
        "api": {"insecure": True},
        "ping": {},
        **extra,
    }


def dynamic(backend: HttpBackend) -> dict[str, Any]:
    return {
        "http": {
            "routers": {
                "app": {"rule": "Host(`app.test`)", "service": "app", "entryPoints": ["web"]},
                "broken": {"rule": "Host(`x`", "service": "app"},
                "partial": {"rule": "Path(`/p`)", "service": "app", "entryPoints": ["web", "nope"]},
                "dash": {"rule": "Host(`api.test`)", "service": "api@internal"},
                "lost": {"rule": "Host(`lost.test`)", "service": "missing"},
            },
            "services": {
                "app": {
                    "loadBalancer": {
                        "servers": [{"url": backend.url}],
                        "healthCheck": {"path": "/health", "interval": "50ms", "timeout": "1s"},
                    }
                }
            },
        }
    }


def request(
    port: int, path: str, method: str = "GET", host: str = "localhost"
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        connection.request(method, path, headers={"Host": host, "Connection": "close"})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def api(proxy: ProxynowProcess, path: str) -> Any:
    status, _, body = request(proxy.ports["traefik"], path)
    assert status == 200, body
    return json.loads(body)


@pytest.fixture
def backend() -> Iterator[HttpBackend]:
    with HttpBackend("app") as server:
        yield server


@pytest.fixture
def proxy(proxynow_factory: Start, backend: HttpBackend) -> ProxynowProcess:
    return proxynow_factory(static(), dynamic(backend), workers=2)


def test_routers_with_their_statuses_and_errors(proxy: ProxynowProcess) -> None:
    routers = {r["name"]: r for r in api(proxy, "/api/http/routers")}
    assert sorted(routers) == [
        "api@internal",
        "app@file",
        "broken@file",
        "dash@file",
        "dashboard@internal",
        "lost@file",
        "partial@file",
        "ping@internal",
    ]
    assert {name: r["status"] for name, r in routers.items()} == {
        "api@internal": "enabled",
        "app@file": "enabled",
        "broken@file": "disabled",
        "dash@file": "enabled",
        "dashboard@internal": "enabled",
        "lost@file": "disabled",
        "partial@file": "warning",
        "ping@internal": "enabled",
    }
    assert routers["lost@file"]["error"] == ["service missing@file does not exist"]
    assert routers["broken@file"]["error"][0].startswith("rule: ")
    assert routers["partial@file"]["using"] == ["web"]
    assert routers["dash@file"]["using"] == ["web"]  # not `traefik`: it only has internals
    assert routers["api@internal"]["provider"] == "internal"
    overview = api(proxy, "/api/overview")
    assert overview["http"]["routers"] == {"total": 8, "warnings": 1, "errors": 2}


def test_paging_filtering_and_404(proxy: ProxynowProcess) -> None:
    port = proxy.ports["traefik"]
    status, headers, body = request(port, "/api/http/routers?per_page=3&page=2")
    assert status == 200 and headers["X-Next-Page"] == "3"
    assert [r["name"] for r in json.loads(body)] == [
        "dash@file",
        "dashboard@internal",
        "lost@file",
    ]
    disabled = api(proxy, "/api/http/routers?status=disabled&sortBy=name&direction=desc")
    assert [r["name"] for r in disabled] == ["lost@file", "broken@file"]
    assert [r["name"] for r in api(proxy, "/api/http/routers?serviceName=app@file")] == [
        "app@file",
        "broken@file",
        "partial@file",
    ]
    assert api(proxy, "/api/http/routers/app%40file")["rule"] == "Host(`app.test`)"
    status, _, body = request(port, "/api/http/routers/nope%40file")
    assert (status, json.loads(body)) == (404, {"message": "router not found: nope@file"})
    status, _, body = request(port, "/api/http/routers?page=9")
    assert status == 400 and b"invalid request: page: 9" in body
    assert request(port, "/api/nothing")[0] == 404
    assert request(port, "/elsewhere")[0] == 404  # the traefik entrypoint has only internals


def test_api_through_a_router_and_not_elsewhere(proxy: ProxynowProcess) -> None:
    web = proxy.ports["web"]
    status, _, body = request(web, "/api/version", host="api.test")
    assert status == 200 and json.loads(body)["Version"]
    assert request(web, "/api/version", host="app.test")[2] == b"app /api/version"
    assert request(web, "/api/version", host="other.test")[0] == 404
    assert request(web, "/ping", host="other.test")[0] == 404  # ping is on `traefik`


def test_server_status_follows_health_checks(proxy: ProxynowProcess, backend: HttpBackend) -> None:
    def server_status() -> str:
        service = api(proxy, "/api/http/services/app%40file")
        status: str = service["serverStatus"][backend.url]
        return status

    assert server_status() == "UP"
    backend.healthy = False
    poll(lambda: server_status() == "DOWN", 20, "serverStatus DOWN")
    backend.healthy = True
    poll(lambda: server_status() == "UP", 20, "serverStatus UP again")


def test_a_change_shows_in_the_api(proxy: ProxynowProcess, backend: HttpBackend) -> None:
    config = dynamic(backend)
    config["http"]["routers"]["late"] = {"rule": "Host(`late.test`)", "service": "app"}
    proxy.write_dynamic(config)

    def late() -> bool:
        names = [r["name"] for r in api(proxy, "/api/http/routers?search=late")]
        return names == ["late@file"]

    poll(late, 20, "the new router in the API")


def test_ping_then_503_while_draining(proxy: ProxynowProcess) -> None:
    port = proxy.ports["traefik"]
    assert request(port, "/ping")[::2] == (200, b"OK")
    status, _, body = request(port, "/ping", method="HEAD")
    assert (status, body) == (200, b"")
    proxy.signal(signal.SIGTERM)

    def unavailable() -> bool:
        try:
            return request(port, "/ping")[::2] == (503, b"Service Unavailable")
        except OSError:
            raise AssertionError("the listener closed before /ping answered 503") from None

    poll(unavailable, 10, "/ping answering 503 while draining")
    assert proxy.wait_exit() == 0


def test_no_secret_in_any_api_answer(proxynow_factory: Start, backend: HttpBackend) -> None:
    config = dynamic(backend)
    http_config = config["http"]
    http_config["routers"]["app"]["middlewares"] = ["basic", "digest", "forward", "hdr"]
    http_config["middlewares"] = {
        "basic": {"basicAuth": {"users": [f"alice:{SECRETS['basic']}"]}},
        "digest": {"digestAuth": {"users": [f"bob:traefik:{SECRETS['digest']}"]}},
        "forward": {
            "forwardAuth": {
                "address": f"https://svc:{SECRETS['forward_password']}@127.0.0.1:9/check",
                "tls": {"cert": "/c.pem", "key": SECRETS["forward_key"]},
            }
        },
        "hdr": {"headers": {"customRequestHeaders": {"Authorization": SECRETS["header"]}}},
    }
    secret_url = f"http://u:{SECRETS['server_password']}@127.0.0.1:{backend.port}"
    http_config["services"]["other"] = {"loadBalancer": {"servers": [{"url": secret_url}]}}
    proxy = proxynow_factory(static(), config, workers=1)
    paths = ["/api/overview", "/api/rawdata", "/api/version", "/api/entrypoints"]
    for section in ("routers", "services", "middlewares"):
        paths.append(f"/api/http/{section}")
        paths += [f"/api/http/{section}/{i['name']}" for i in api(proxy, f"/api/http/{section}")]
    answers = [request(proxy.ports["traefik"], path) for path in paths]
    assert all(status == 200 for status, _, _ in answers)
    text = b"".join(body for _, _, body in answers).decode()
    assert "alice:REDACTED" in text and "u:REDACTED@127.0.0.1" in text
    for name, secret in SECRETS.items():
        assert secret not in text, f"{name} leaked"
