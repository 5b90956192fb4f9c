"""Active health checks: probes of real servers (the probe request and the status rules,
pure, are in tests/unit/control/test_probe_rules.py)."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from proxynow.config.dynamic import DynamicConfig, HealthCheck
from proxynow.config.static import StaticConfig
from proxynow.control.healthcheck import HealthChecker, ProbeTarget
from proxynow.edge.upstream.health import HealthSet
from proxynow.edge.upstream.transport import TransportOptions
from proxynow.snapshot import Snapshot


def check(**fields: Any) -> HealthCheck:
    return HealthCheck.model_validate({"path": "/health", **fields})


# ---------------------------------------------------------------- real servers


class Backend:
    """An aiohttp server on 127.0.0.1:0 whose /health answer a test sets."""

    def __init__(self) -> None:
        self.status = 200
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self.hang = asyncio.Event()  # set at teardown: /hang does not answer before
        self.url = ""

    async def health(self, request: web.Request) -> web.StreamResponse:
        self.seen.append((request.method, request.path_qs, dict(request.headers)))
        return web.Response(status=self.status, text="health")

    async def redirect(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/down")

    async def down(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=500)

    async def hang_forever(self, request: web.Request) -> web.StreamResponse:
        await self.hang.wait()
        return web.Response()


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    state = Backend()
    app = web.Application()
    app.router.add_route("*", "/health", state.health)
    app.router.add_get("/redirect", state.redirect)
    app.router.add_get("/down", state.down)
    app.router.add_get("/hang", state.hang_forever)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    state.url = f"http://{host}:{port}"
    try:
        yield state
    finally:
        state.hang.set()  # a timed-out probe's handler is still waiting
        await runner.cleanup()


@pytest.fixture
async def checker() -> AsyncIterator[tuple[HealthChecker, list[HealthSet]]]:
    published: list[HealthSet] = []
    health = HealthChecker(StaticConfig(), published.append)
    try:
        yield health, published
    finally:
        await health.close()


async def probe(health: HealthChecker, url: str, **fields: Any) -> str | None:
    return await health.probe(ProbeTarget("s@f", url, check(**fields), TransportOptions()))


async def test_a_probe_judges_the_status(
    backend: Backend, checker: tuple[HealthChecker, list[HealthSet]]
) -> None:
    health, _ = checker
    assert await probe(health, backend.url) is None
    backend.status = 503
    assert "503" in (await probe(health, backend.url) or "")
    backend.status = 204
    assert await probe(health, backend.url, status=204) is None
    assert "expected 200" in (await probe(health, backend.url, status=200) or "")


async def test_a_probe_sends_method_host_and_headers(
    backend: Backend, checker: tuple[HealthChecker, list[HealthSet]]
) -> None:
    health, _ = checker
    fields = {"method": "HEAD", "hostname": "app.test", "headers": {"X-Probe": "yes"}}
    assert await probe(health, backend.url, path="/health?deep=1", **fields) is None
    method, path, headers = backend.seen[-1]
    assert (method, path) == ("HEAD", "/health?deep=1")
    assert headers["Host"] == "app.test"
    assert headers["X-Probe"] == "yes"


async def test_redirects_are_followed_unless_told_not_to(
    backend: Backend, checker: tuple[HealthChecker, list[HealthSet]]
) -> None:
    health, _ = checker
    assert "500" in (await probe(health, backend.url, path="/redirect") or "")
    assert await probe(health, backend.url, path="/redirect", followRedirects=False) is None


async def test_a_probe_times_out_and_a_refused_server_is_down(
    backend: Backend, checker: tuple[HealthChecker, list[HealthSet]]
) -> None:
    health, _ = checker
    reason = await probe(health, backend.url, path="/hang", timeout="200ms")
    assert reason is not None and "within 0.2s" in reason
    with socket.socket() as bound:  # bound, not listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        reason = await probe(health, f"http://127.0.0.1:{port}")
    assert reason is not None and reason.startswith("request failed")


async def until(condition: Callable[[], Any], what: str, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def snapshot(url: str, version: int, **fields: Any) -> Snapshot:
    service = {"loadBalancer": {"servers": [{"url": url}], "healthCheck": check(**fields)}}
    config = DynamicConfig.model_validate({"http": {"services": {"s@f": service}}})
    return Snapshot(version=version, config=config)


async def test_only_transitions_are_published_and_logged(
    backend: Backend,
    checker: tuple[HealthChecker, list[HealthSet]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    health, published = checker
    health.on_snapshot(snapshot(backend.url, 1, interval="20ms"))
    await until(lambda: len(backend.seen) >= 3, "three probes")
    assert published == []
    backend.status = 500
    await until(lambda: published, "the server going down")
    assert published == [HealthSet({"s@f": frozenset({backend.url})})]
    seen = len(backend.seen)
    await until(lambda: len(backend.seen) >= seen + 3, "three more probes")
    assert len(published) == 1
    backend.status = 200
    await until(lambda: len(published) == 2, "the server coming back")
    assert published[-1] == HealthSet()
    messages = [r.getMessage() for r in caplog.records if r.name == "proxynow.control.healthcheck"]
    assert len([m for m in messages if "is down: received error status 500" in m]) == 1
    assert len([m for m in messages if "is back up" in m]) == 1


async def test_a_server_that_leaves_the_configuration_is_no_longer_down(
    backend: Backend, checker: tuple[HealthChecker, list[HealthSet]]
) -> None:
    health, published = checker
    backend.status = 500
    health.on_snapshot(snapshot(backend.url, 1, interval="20ms"))
    await until(lambda: published, "the server going down")
    health.on_snapshot(Snapshot(version=2, config=DynamicConfig()))
    assert published[-1] == HealthSet()
    assert health.probing == frozenset()


async def test_grpc_mode_is_reported_once_and_not_probed(
    backend: Backend,
    checker: tuple[HealthChecker, list[HealthSet]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    health, _ = checker
    health.on_snapshot(snapshot(backend.url, 1, interval="10ms", mode="grpc"))
    health.on_snapshot(snapshot(backend.url, 2, interval="10ms", mode="grpc"))
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == [
        "service s@f: healthCheck mode grpc is not supported; its servers are not checked"
    ]
    assert health.probing == frozenset()


async def test_https_probes_use_the_transport_tls_settings(
    checker: tuple[HealthChecker, list[HealthSet]], tmp_path: Any
) -> None:
    import trustme

    ca = trustme.CA()
    leaf = ca.issue_cert("backend.test")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(server_context)
    app = web.Application()
    app.router.add_get("/health", _ok)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context).start()
    url = f"https://127.0.0.1:{runner.addresses[0][1]}"
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    health, _ = checker

    async def with_tls(**options: Any) -> str | None:
        target = ProbeTarget("s@f", url, check(), TransportOptions(**options))
        return await health.probe(target)

    try:
        untrusted = await with_tls()
        assert untrusted is not None and "certificate" in untrusted.lower()
        assert await with_tls(root_cas=(str(ca_file),), server_name="backend.test") is None
        wrong_name = await with_tls(root_cas=(str(ca_file),), server_name="other.test")
        assert wrong_name is not None
        assert await with_tls(insecure_skip_verify=True) is None
    finally:
        await runner.cleanup()


async def _ok(request: web.Request) -> web.StreamResponse:
    return web.Response(text="ok")
