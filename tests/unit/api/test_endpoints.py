"""Paths to answers (pure), and no secret in any answer of a config that has them all."""

from __future__ import annotations

import json
from typing import Any

import pytest

from proxynow.api.endpoints import Answer, answer, ping_answer
from proxynow.api.shapes import KINDS, View
from tests.unit.api.support import BASE_STATIC, make_view
from tests.unit.api.test_shapes import DYNAMIC


def get(view: View, path: str, prefix: str = "/api", **query: str) -> Answer:
    return answer(view, "GET", path, query, prefix)


def body(result: Answer) -> Any:
    return json.loads(result.body)


@pytest.fixture(scope="module")
def view() -> View:
    return make_view(DYNAMIC)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/overview", 200),
        ("/api/rawdata", 200),
        ("/api/version", 200),
        ("/api/entrypoints", 200),
        ("/api/entrypoints/web", 200),
        ("/api/http/routers", 200),
        ("/api/http/services/", 200),  # a trailing slash is the list
        ("/api/tcp/middlewares", 200),
        ("/api/udp/routers", 200),
        ("/api/udp/middlewares", 404),  # UDP has none
        ("/api/nothing", 404),
        ("/api", 404),
        ("/other", 404),
        ("/apix/overview", 404),
    ],
)
def test_paths(view: View, path: str, status: int) -> None:
    assert get(view, path).status == status


def test_one_item_by_percent_encoded_name(view: View) -> None:
    result = get(view, "/api/http/routers/app%40file")
    assert result.status == 200 and result.content_type == "application/json"
    assert body(result)["name"] == "app@file"
    assert body(get(view, "/api/entrypoints/web"))["name"] == "web"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/api/http/routers/nope@file", "router not found: nope@file"),
        ("/api/http/services/x%2Fy", "service not found: x/y"),
        ("/api/tcp/middlewares/m@file", "middleware not found: m@file"),
        ("/api/entrypoints/nope", "entry point not found: nope"),
    ],
)
def test_unknown_names_are_404_with_a_message(view: View, path: str, message: str) -> None:
    result = get(view, path)
    assert (result.status, body(result)) == (404, {"message": message})


def test_lists_page_with_next_page_header(view: View) -> None:
    first = get(view, "/api/http/routers", per_page="4")
    assert first.headers["X-Next-Page"] == "2"
    assert [r["name"] for r in body(first)] == [
        "api@internal",
        "app@file",
        "broken@file",
        "dash@file",
    ]
    second = get(view, "/api/http/routers", per_page="4", page="2")
    assert second.headers["X-Next-Page"] == "1"
    assert [r["name"] for r in body(second)] == [
        "dashboard@internal",
        "partial@file",
        "ping@internal",
    ]
    past = get(view, "/api/http/routers", per_page="4", page="3")
    assert (past.status, body(past)) == (400, {"message": "invalid request: page: 3, per_page: 4"})


def test_lists_filter(view: View) -> None:
    disabled = body(get(view, "/api/http/routers", status="disabled"))
    assert [r["name"] for r in disabled] == ["broken@file"]
    internal = body(get(view, "/api/http/services", search="internal"))
    assert [s["name"] for s in internal] == [
        "api@internal",
        "dashboard@internal",
        "ping@internal",
    ]
    users = body(get(view, "/api/http/routers", serviceName="api@internal"))
    assert [r["name"] for r in users] == ["api@internal", "dash@file"]


def test_base_path_prefix(view: View) -> None:
    assert get(view, "/proxy/api/version", prefix="/proxy/api").status == 200
    assert get(view, "/api/version", prefix="/proxy/api").status == 404


def test_only_get_and_head(view: View) -> None:
    assert answer(view, "HEAD", "/api/overview", {}, "/api").status == 200
    assert answer(view, "POST", "/api/overview", {}, "/api").status == 405


def test_ping() -> None:
    assert (ping_answer(False).status, ping_answer(False).body) == (200, b"OK")
    assert (ping_answer(True).status, ping_answer(True).body) == (503, b"Service Unavailable")
    assert ping_answer(True, 204).status == 204


# ---------------------------------------------------------------- no secret anywhere

# Every secret a configuration can hold; none may appear in any answer.
SECRETS = {
    "basic": "$apr1$SECRETbasichash",
    "digest": "SECRETdigesthash0123",
    "forward_key": "SECRET-forwardauth-key",
    "forward_password": "SECRETforwardpw",
    "transport_key": "SECRET-transport-key",
    "tcp_transport_key": "SECRET-tcp-transport-key",
    "tls_key": "SECRET-tls-certificate-key",
    "server_password": "SECRETserverpw",
    "header": "SECRET-bearer-token",
    "health_header": "SECRET-health-token",
    "eab": "SECRET-eab-hmac",
    "docker_password": "SECRET-docker-password",
    "docker_key": "SECRET-docker-tls-key",
}

SECRET_DYNAMIC: dict[str, Any] = {
    "http": {
        "routers": {
            "app": {
                "rule": "Host(`app`)",
                "service": "app",
                "middlewares": ["basic", "digest", "forward", "hdr"],
            }
        },
        "middlewares": {
            "basic": {"basicAuth": {"users": [f"alice:{SECRETS['basic']}"]}},
            "digest": {"digestAuth": {"users": [f"bob:traefik:{SECRETS['digest']}"]}},
            "forward": {
                "forwardAuth": {
                    "address": f"https://svc:{SECRETS['forward_password']}@auth:9000/check",
                    "tls": {"cert": "/c.pem", "key": SECRETS["forward_key"]},
                }
            },
            "hdr": {"headers": {"customRequestHeaders": {"Authorization": SECRETS["header"]}}},
        },
        "services": {
            "app": {
                "loadBalancer": {
                    "servers": [{"url": f"http://u:{SECRETS['server_password']}@10.0.0.1:80"}],
                    "serversTransport": "mtls",
                    "healthCheck": {
                        "path": "/h",
                        "headers": {"X-Auth-Token": SECRETS["health_header"]},
                    },
                }
            }
        },
        "serversTransports": {
            "mtls": {"certificates": [{"certFile": "/c.pem", "keyFile": SECRETS["transport_key"]}]}
        },
    },
    "tcp": {
        "serversTransports": {
            "t": {
                "tls": {
                    "certificates": [
                        {"certFile": "/c.pem", "keyFile": SECRETS["tcp_transport_key"]}
                    ]
                }
            }
        }
    },
    "tls": {"certificates": [{"certFile": "/c.pem", "keyFile": SECRETS["tls_key"]}]},
}

SECRET_STATIC: dict[str, Any] = {
    **BASE_STATIC,
    "certificatesResolvers": {
        "le": {
            "acme": {
                "email": "a@example.com",
                "eab": {"kid": "kid", "hmacEncoded": SECRETS["eab"]},
                "tlsChallenge": {},
            }
        }
    },
    "providers": {
        "docker": {
            "password": SECRETS["docker_password"],
            "tls": {"cert": "/c.pem", "key": SECRETS["docker_key"]},
        }
    },
}


def every_answer(view: View) -> list[bytes]:
    """The body of every GET the API answers for `view`: lists, items, the rest."""
    paths = ["/api/overview", "/api/rawdata", "/api/version", "/api/entrypoints"]
    paths += [f"/api/entrypoints/{name}" for name in view.entry_points]
    for protocol, section in KINDS:
        paths.append(f"/api/{protocol}/{section}")
        paths += [f"/api/{protocol}/{section}/{name}" for name in view.items[protocol, section]]
    results = [get(view, path) for path in paths]
    assert all(result.status == 200 for result in results)
    return [result.body for result in results]


def test_no_secret_in_any_answer() -> None:
    view = make_view(SECRET_DYNAMIC, SECRET_STATIC)
    answers = every_answer(view)
    assert len(answers) > 15
    text = b"\n".join(answers).decode()
    # The objects are there, and show what is not secret.
    assert "alice:REDACTED" in text and "bob:traefik:REDACTED" in text
    assert "https://svc:REDACTED@auth:9000/check" in text
    for name, secret in SECRETS.items():
        assert secret not in text, f"{name} leaked"
