"""Active health checks, pure: the probe request built from a server and its healthCheck,
and the status rules that judge an answer."""

from __future__ import annotations

from typing import Any

import pytest

from proxynow.config.dynamic import HealthCheck
from proxynow.control.healthcheck import judge, probe_request


def check(**fields: Any) -> HealthCheck:
    return HealthCheck.model_validate({"path": "/health", **fields})


@pytest.mark.parametrize(
    ("server", "fields", "url", "headers"),
    [
        ("http://10.0.0.1:81", {}, "http://10.0.0.1:81/health", {}),
        ("http://10.0.0.1:81/base/x", {}, "http://10.0.0.1:81/health", {}),
        ("http://10.0.0.1/base/", {"path": "ping?full=1"}, "http://10.0.0.1/base/ping?full=1", {}),
        ("http://h:81", {"scheme": "https", "port": 8443}, "https://h:8443/health", {}),
        ("http://[::1]:81", {"port": 90}, "http://[::1]:90/health", {}),
        (
            "http://h",
            {"hostname": "app.test", "headers": {"X-Probe": "1"}},
            "http://h/health",
            {"X-Probe": "1", "Host": "app.test"},
        ),
    ],
)
def test_probe_request(server: str, fields: dict[str, Any], url: str, headers: Any) -> None:
    request = probe_request(server, check(**fields))
    assert (request.method, request.url, dict(request.headers)) == ("GET", url, headers)


@pytest.mark.parametrize(
    ("status", "expected", "healthy"),
    [(200, 0, True), (204, 0, True), (302, 0, True), (399, 0, True), (199, 0, False),
     (404, 0, False), (503, 0, False), (204, 204, True), (200, 204, False), (503, 503, True)],
)  # fmt: skip
def test_status_rules(status: int, expected: int, healthy: bool) -> None:
    reason = judge(status, expected)
    assert (reason is None) == healthy
    if not healthy:
        assert str(status) in (reason or "")
