"""One measurement end to end with real nginx and wrk, and the ways a proxy can fail."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench import harness as harness_module
from bench.harness import Harness
from bench.proxies import Launch
from bench.scenarios import BY_NAME


def test_nginx_is_measured(harness: Harness) -> None:
    m = harness.measure("nginx", BY_NAME["keepalive-c10"], 0)
    assert m.ok, m.error
    assert m.requests > 0 and m.rps > 0
    assert (m.socket_errors, m.non_2xx) == (0, 0)
    assert m.cpu_us_per_request > 0
    assert m.rss_mib > 0


def test_nginx_with_1000_host_routers(harness: Harness) -> None:
    m = harness.measure("nginx", BY_NAME["routers-1000"], 0)
    assert m.ok, m.error
    assert m.non_2xx == 0


def test_nginx_serves_beside_the_churn_writer_as_its_baseline(harness: Harness) -> None:
    """nginx reads no dynamic file: it is measured while the writer runs, not checked for
    the churned routers (its p99 shows what the writer alone costs on the load core)."""
    m = harness.measure("nginx", BY_NAME["config-churn"], 0)
    assert m.ok, m.error
    assert (m.socket_errors, m.non_2xx) == (0, 0)
    assert m.churn_writes > 0
    assert m.churn_applied is None


def test_a_proxy_that_exits_is_a_failed_measurement(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    command = Launch([sys.executable, "-c", "raise SystemExit('no such option: workers')"], {})
    monkeypatch.setattr(harness_module, "launch", lambda *args: command)
    m = harness.measure("proxynow", BY_NAME["keepalive-c10"], 0)
    assert not m.ok
    assert "exited with code 1" in m.error
    assert "no such option: workers" in m.error


def test_a_server_that_does_not_proxy_is_a_failed_measurement(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Python's file server answers on the port, but not with the backend's body.
    serve = [sys.executable, "-m", "http.server", "-b", "127.0.0.1", "-d", str(tmp_path)]
    command = Launch([*serve, str(harness.proxy_port)], {})
    monkeypatch.setattr(harness_module, "launch", lambda *args: command)
    monkeypatch.setattr(harness_module, "READY_TIMEOUT", 2.0)
    m = harness.measure("proxynow", BY_NAME["keepalive-c10"], 0)
    assert not m.ok
    assert "did not proxy / with Host 127.0.0.1 (last seen: status 200" in m.error


def test_traefik_is_measured_while_its_config_churns(harness: Harness) -> None:
    m = harness.measure("traefik", BY_NAME["config-churn"], 0)
    assert m.ok, m.error
    assert (m.socket_errors, m.non_2xx) == (0, 0)
    assert m.churn_writes > 0
    assert m.churn_applied is True
