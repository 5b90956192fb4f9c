"""`proxynow run` end to end: start-up message, workers sharing the load, clean exits."""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.proc import (
    HttpBackend,
    ProxynowProcess,
    http_get,
    poll,
    proxynow_factory,
)

__all__ = ["proxynow_factory"]  # the fixture, re-exported for pytest

Start = Callable[..., ProxynowProcess]


@pytest.fixture
def backend() -> Iterator[HttpBackend]:
    with HttpBackend("b1") as server:
        yield server


def web(backend: HttpBackend) -> tuple[dict[str, Any], dict[str, Any]]:
    static = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}}
    dynamic = {
        "http": {
            "routers": {"app": {"rule": "Host(`app.test`)", "service": "app"}},
            "services": {"app": {"loadBalancer": {"servers": [{"url": backend.url}]}}},
        }
    }
    return static, dynamic


def test_startup_says_what_it_serves_where_at_the_default_log_level(
    proxynow_factory: Start, backend: HttpBackend
) -> None:
    static, dynamic = web(backend)
    proxy = proxynow_factory(static, dynamic)
    port = proxy.ports["web"]
    assert f"serving HTTP on http://127.0.0.1:{port} (entrypoint web)" in proxy.stderr()
    assert http_get(port) == (200, b"b1 /")
    assert proxy.stop() == 0


def test_every_worker_serves_requests(proxynow_factory: Start, backend: HttpBackend) -> None:
    static, dynamic = web(backend)
    proxy = proxynow_factory(static, dynamic, workers=2)
    for _ in range(60):  # new connections: the kernel spreads them over both listeners
        assert http_get(proxy.ports["web"]) == (200, b"b1 /")
    per_worker = {w["pid"]: served(w["metrics"]) for w in proxy.metrics()}
    assert set(per_worker) == set(proxy.worker_pids())
    assert sum(per_worker.values()) == 60
    assert all(count > 0 for count in per_worker.values()), per_worker


def served(metrics: dict[str, Any]) -> int:
    """GET requests with a 2xx answer that the router `app@file` counted."""
    router = metrics["routers"].get("app@file", {"requests": {}})
    count: int = router["requests"].get("2xx", {}).get("GET", 0)
    return count


def test_address_in_use_is_a_clear_error(proxynow_factory: Start, tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        static = {"entryPoints": {"web": {"address": f"127.0.0.1:{port}"}}}
        proxy = proxynow_factory(static, wait=False)
        code = proxy.wait_exit()
    assert code != 0
    message = proxy.stderr()
    assert f"127.0.0.1:{port}" in message
    assert "already in use" in message
    assert "entrypoint web" in message
    assert "Traceback" not in message


def test_sigint_drains_and_exits_zero(proxynow_factory: Start, backend: HttpBackend) -> None:
    static, dynamic = web(backend)
    proxy = proxynow_factory(static, dynamic)
    pids = proxy.worker_pids()
    proxy.signal(signal.SIGINT)
    assert proxy.wait_exit() == 0
    for pid in pids:  # the workers are gone too
        poll(lambda pid=pid: not Path(f"/proc/{pid}").exists() or _zombie(pid), what="exit")


def _zombie(pid: int) -> bool:
    try:
        return " Z " in Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1][:4]
    except FileNotFoundError:
        return True


def test_a_control_plane_that_dies_takes_its_workers_with_it(
    proxynow_factory: Start, backend: HttpBackend
) -> None:
    static, dynamic = web(backend)
    static["entryPoints"]["web"]["transport"] = {"lifeCycle": {"graceTimeOut": "1s"}}
    proxy = proxynow_factory(static, dynamic)
    pids = proxy.worker_pids()
    proxy.signal(signal.SIGKILL)
    proxy.wait_exit()
    # The channel closes; each worker drains by itself and exits (reparented, so no zombie).
    for pid in pids:
        poll(lambda pid=pid: not Path(f"/proc/{pid}").exists(), 30, f"worker {pid} to exit")
