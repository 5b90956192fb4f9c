"""Configuration models as Traefik's JSON, and the redaction of secrets (pure tables)."""

from __future__ import annotations

from typing import Any

import pytest

from proxynow.api.dump import REDACTED, dump, go_duration, redact
from proxynow.config.dynamic import Service
from proxynow.config.middlewares import Middleware
from proxynow.config.static import EntryPoint


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0s"),
        (0.1, "100ms"),
        (0.0015, "1.5ms"),
        (0.000002, "2µs"),
        (5e-9, "5ns"),
        (1.5, "1.5s"),
        (10.0, "10s"),
        (60.0, "1m0s"),
        (90.0, "1m30s"),
        (180.0, "3m0s"),
        (3600.0, "1h0m0s"),
        (3661.5, "1h1m1.5s"),
        (-2.0, "-2s"),
    ],
)
def test_go_duration_prints_as_go_does(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


def test_dump_is_omitempty_with_go_durations() -> None:
    service = Service.model_validate(
        {
            "loadBalancer": {
                "servers": [{"url": "http://a:1"}],
                "healthCheck": {"path": "/h", "interval": "10s", "unhealthyInterval": "500ms"},
            }
        }
    )
    assert dump(service) == {
        "loadBalancer": {
            "servers": [{"url": "http://a:1", "weight": 1}],
            "strategy": "wrr",
            "passHostHeader": True,
            "healthCheck": {
                "path": "/h",
                "mode": "http",
                "interval": "10s",
                "unhealthyInterval": "500ms",
                "timeout": "5s",
                "followRedirects": True,
                "method": "GET",
            },
            "responseForwarding": {"flushInterval": "100ms"},
        }
    }


def test_dump_keeps_an_empty_nested_object_as_go_keeps_a_set_pointer() -> None:
    entrypoint = dump(EntryPoint(address=":80"))
    assert entrypoint["forwardedHeaders"] == {}
    assert entrypoint["address"] == ":80"
    assert entrypoint["transport"]["lifeCycle"] == {"graceTimeOut": "10s"}
    assert "asDefault" not in entrypoint  # false is left out


@pytest.mark.parametrize(
    ("middleware", "expected"),
    [
        (
            {"basicAuth": {"users": ["alice:$apr1$abc$hash", "bob:{SHA}xyz="]}},
            {"basicAuth": {"users": [f"alice:{REDACTED}", f"bob:{REDACTED}"], "realm": "traefik"}},
        ),
        (
            {"digestAuth": {"users": ["alice:traefik:0123abcd"]}},
            {"digestAuth": {"users": [f"alice:traefik:{REDACTED}"], "realm": "traefik"}},
        ),
        (
            {"basicAuth": {"users": ["no-colon-at-all"]}},
            {"basicAuth": {"users": [REDACTED], "realm": "traefik"}},
        ),
        (
            {"forwardAuth": {"address": "https://u:pw@auth:1/x", "tls": {"cert": "c", "key": "k"}}},
            {
                "forwardAuth": {
                    "address": f"https://u:{REDACTED}@auth:1/x",
                    "tls": {"cert": "c", "key": REDACTED},
                    "maxBodySize": -1,
                    "maxResponseBodySize": -1,
                }
            },
        ),
        (
            {
                "headers": {
                    "customRequestHeaders": {
                        "Authorization": "Bearer t0k",
                        "X-Api-Key": "k3y",
                        "X-Env": "prod",
                    }
                }
            },
            {
                "headers": {
                    "customRequestHeaders": {
                        "Authorization": REDACTED,
                        "X-Api-Key": REDACTED,
                        "X-Env": "prod",
                    }
                }
            },
        ),
    ],
)
def test_redact_middleware_secrets(middleware: dict[str, Any], expected: dict[str, Any]) -> None:
    dumped = redact(dump(Middleware.model_validate(middleware)))
    for key, value in expected.items():
        assert {k: v for k, v in dumped[key].items() if k in value} == value


def test_redact_server_url_password_but_not_plain_urls() -> None:
    service = Service.model_validate(
        {"loadBalancer": {"servers": [{"url": "http://u:pw@a:1"}, {"url": "http://a:2/p@q"}]}}
    )
    servers = redact(dump(service))["loadBalancer"]["servers"]
    assert [s["url"] for s in servers] == [f"http://u:{REDACTED}@a:1", "http://a:2/p@q"]
