"""Where `proxynow healthcheck` looks for /ping, from the static configuration alone."""

from __future__ import annotations

from typing import Any

import pytest

from proxynow.config.static import StaticConfig
from proxynow.control.ping import PingTarget, ping_target


def _target(data: dict[str, Any]) -> PingTarget | str:
    return ping_target(StaticConfig.model_validate(data))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"ping": {}}, PingTarget("127.0.0.1", 8080, False)),  # `traefik` added on :8080
        ({"ping": {}, "entryPoints": {"traefik": {"address": ":9000"}}},
         PingTarget("127.0.0.1", 9000, False)),
        ({"ping": {}, "entryPoints": {"traefik": {"address": "[::]:9000"}}},
         PingTarget("::1", 9000, False)),
        ({"ping": {}, "entryPoints": {"traefik": {"address": "0.0.0.0:9000"}}},
         PingTarget("127.0.0.1", 9000, False)),
        ({"ping": {"entryPoint": "web"}, "entryPoints": {"web": {"address": "10.1.2.3:81"}}},
         PingTarget("10.1.2.3", 81, False)),
        ({"ping": {"entryPoint": "ws"},
          "entryPoints": {"ws": {"address": ":8443", "http": {"tls": {}}}}},
         PingTarget("127.0.0.1", 8443, True)),
    ],
)  # fmt: skip
def test_target(data: dict[str, Any], expected: PingTarget) -> None:
    assert _target(data) == expected


def test_url_brackets_ipv6() -> None:
    assert PingTarget("::1", 9000, True).url == "https://[::1]:9000/ping"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({}, "ping is not enabled"),
        ({"ping": {"entryPoint": "nope"}}, "'nope' is not an entrypoint"),
    ],
)
def test_no_target(data: dict[str, Any], reason: str) -> None:
    result = _target(data)
    assert isinstance(result, str)
    assert reason in result
