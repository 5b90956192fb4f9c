"""End to end: real containers, a real `proxynow run` with `providers.docker`, real requests.

One proxynow serves the whole module; it considers only this session's containers
(constraint on the `proxynow.test` label the fixture adds). Containers are reached on
their bridge IPs from the host. Every wait polls for a condition with a deadline.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.docker.conftest import Engine, Resources
from tests.e2e.docker.socketproxy import SocketProxy
from tests.support.proc import ProxynowProcess, http_get, poll, proxynow_factory, start_proxynow

__all__ = ["proxynow_factory"]

TIMEOUT = 15.0


def _static(engine: Engine, **docker: Any) -> dict[str, Any]:
    return {
        "entryPoints": {"web": {"address": "127.0.0.1:0"}},
        "log": {"level": "WARN"},  # object errors are warnings (Traefik's default is ERROR)
        "providers": {
            "providersThrottleDuration": "10ms",
            "docker": {"constraints": f"Label(`proxynow.test`,`{engine.prefix}`)", **docker},
        },
    }


@pytest.fixture(scope="module")
def proxy(
    docker_engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxynowProcess]:
    process = start_proxynow(tmp_path_factory.mktemp("proxynow"), _static(docker_engine))
    try:
        yield process
    finally:
        process.stop()


def _get(proxy: ProxynowProcess, host: str, path: str = "/cgi-bin/who") -> tuple[int, str]:
    status, body = http_get(proxy.ports["web"], path, host=host, timeout=5)
    return status, body.decode(errors="replace")


def _serves(proxy: ProxynowProcess, host: str) -> Callable[[], str | None]:
    def check() -> str | None:
        status, body = _get(proxy, host)
        return body if status == 200 else None

    return check


def _status_is(proxy: ProxynowProcess, host: str, wanted: int) -> Callable[[], bool]:
    return lambda: _get(proxy, host)[0] == wanted


def _field(body: str, name: str) -> str:
    match = re.search(rf"^{name}=(.*)$", body, re.M)
    assert match is not None, body
    return match[1]


def test_label_routes_then_stop_removes(
    proxy: ProxynowProcess, docker_resources: Resources
) -> None:
    host = f"{docker_resources.name('app')}.test"
    container = docker_resources.run({"proxynow.http.routers.app.rule": f"Host(`{host}`)"})
    body = poll(_serves(proxy, host), TIMEOUT, "the labelled route")
    assert _field(body, "hostname") == container.id[:12]
    assert _field(body, "host") == host  # passHostHeader defaults to true
    container.stop(timeout=5)
    poll(_status_is(proxy, host, 404), TIMEOUT, "the route to disappear")


def test_default_rule_names_the_container(
    proxy: ProxynowProcess, docker_resources: Resources
) -> None:
    name = docker_resources.name("plain_name")
    docker_resources.run({}, name=name)
    expected = re.sub(r"[^a-zA-Z0-9]+", "-", name)  # Host(`{{ normalize .Name }}`)
    poll(_serves(proxy, expected), TIMEOUT, "the default rule's route")


def test_three_replicas_share_one_load_balancer(
    proxy: ProxynowProcess, docker_resources: Resources
) -> None:
    host = f"{docker_resources.name('scaled')}.test"
    labels = {
        "com.docker.compose.project": "shop",
        "com.docker.compose.service": docker_resources.name("web"),
        "proxynow.http.routers.scaled.rule": f"Host(`{host}`)",
    }
    replicas = {docker_resources.run(labels).id[:12] for _ in range(3)}
    seen: set[str] = set()

    def all_answered() -> bool:
        status, body = _get(proxy, host)
        if status == 200:
            seen.add(_field(body, "hostname"))
        return seen == replicas

    poll(all_answered, TIMEOUT, "all three replicas to answer")


def test_unhealthy_container_is_drained(
    proxy: ProxynowProcess, docker_resources: Resources
) -> None:
    host = f"{docker_resources.name('health')}.test"
    container = docker_resources.run(
        {"proxynow.http.routers.health.rule": f"Host(`{host}`)"},
        healthcheck={
            "test": ["CMD", "test", "-f", "/www/index.html"],
            "interval": 200_000_000,
            "retries": 1,
        },
    )
    poll(_serves(proxy, host), TIMEOUT, "the healthy container's route")
    container.exec_run(["rm", "/www/index.html"])
    poll(_status_is(proxy, host, 404), TIMEOUT, "the unhealthy container to be drained")
    container.exec_run(["sh", "-c", "echo back > /www/index.html"])
    poll(_serves(proxy, host), TIMEOUT, "the route after recovery")


def test_network_label_chooses_the_network(
    proxy: ProxynowProcess, docker_resources: Resources
) -> None:
    first, second = docker_resources.network(), docker_resources.network()
    host = f"{docker_resources.name('net')}.test"
    container = docker_resources.run(
        {
            "proxynow.http.routers.net.rule": f"Host(`{host}`)",
            "proxynow.docker.network": second.name,
        },
        network=first.name,
    )
    second.connect(container)
    container.restart(timeout=5)  # a start event after the second network is attached
    second.reload()
    gateway = second.attrs["IPAM"]["Config"][0]["Gateway"]

    def via_second() -> bool:
        status, body = _get(proxy, host)
        return status == 200 and gateway in _field(body, "remote")

    poll(via_second, TIMEOUT, "the route through the labelled network")


def test_missing_network_falls_back_with_one_warning(
    proxy: ProxynowProcess, docker_resources: Resources
) -> None:
    host = f"{docker_resources.name('nonet')}.test"
    name = docker_resources.name("nonet")
    container = docker_resources.run(
        {
            "proxynow.http.routers.nonet.rule": f"Host(`{host}`)",
            "proxynow.http.services.nonet.loadbalancer.server.port": "80",
            "proxynow.docker.network": "no-such-network",
        },
        name=name,
    )
    # As Traefik: the container's network is used instead, with a warning.
    body = poll(_serves(proxy, host), TIMEOUT, "the route through the fallback network")
    assert _field(body, "hostname") == container.id[:12]
    warning = f"container {name!r}: network 'no-such-network' is not attached (attached: bridge)"
    poll(lambda: warning in proxy.stderr(), TIMEOUT, "the fallback warning")
    assert proxy.stderr().count(warning) == 1


def test_malformed_labels_disable_only_their_objects(
    proxy: ProxynowProcess, docker_resources: Resources
) -> None:
    good = f"{docker_resources.name('good')}.test"
    bad_port = f"{docker_resources.name('badport')}.test"
    bad_mw = f"{docker_resources.name('badmw')}.test"
    docker_resources.run(
        {
            "proxynow.http.routers.badport.rule": f"Host(`{bad_port}`)",
            "proxynow.http.services.badport.loadbalancer.server.port": "eighty",
        }
    )
    docker_resources.run(
        {
            "proxynow.http.routers.badmw.rule": f"Host(`{bad_mw}`)",
            "proxynow.http.routers.badmw.middlewares": "nosuch",
            "proxynow.http.middlewares.nosuch.frobnicate.level": "3",
        }
    )
    docker_resources.run({"proxynow.http.routers.good.rule": f"Host(`{good}`)"})
    poll(_serves(proxy, good), TIMEOUT, "the good container's route")
    poll(lambda: "'eighty' is not a port number" in proxy.stderr(), TIMEOUT, "the port error")
    poll(lambda: "frobnicate" in proxy.stderr(), TIMEOUT, "the middleware error")
    assert _get(proxy, bad_port)[0] in (404, 503)
    assert _get(proxy, bad_mw)[0] in (404, 503)


def test_bad_tcp_middleware_label_costs_only_its_own_objects(
    docker_engine: Engine,
    docker_resources: Resources,
    proxynow_factory: Callable[..., ProxynowProcess],
) -> None:
    static = _static(docker_engine)
    static["entryPoints"]["tcp"] = {"address": "127.0.0.1:0"}
    proxy = proxynow_factory(static)
    good, legacy = (f"{docker_resources.name(hint)}.test" for hint in ("good", "legacy"))
    unsure_name = docker_resources.name("unsure")
    # Issue 18: this label made the provider loop on "unexpected error, resynchronising".
    bad = docker_resources.run(
        {"proxynow.tcp.routers.limited.rule": "HostSNI(`*`)",
         "proxynow.tcp.routers.limited.entrypoints": "tcp",
         "proxynow.tcp.routers.limited.middlewares": "limit",
         "proxynow.tcp.middlewares.limit.inflightconn.amount": "x",
         "proxynow.tcp.services.limited.loadbalancer.server.port": "80"}
    )  # fmt: skip
    docker_resources.run(
        {"proxynow.http.routers.legacy.rule": f"Host(`{legacy}`)",
         "proxynow.tcp.middlewares.wl.ipwhitelist.sourcerange": "10.0.0.0/8"}
    )  # fmt: skip
    docker_resources.run(
        {"proxynow.enable": "maybe", "proxynow.http.routers.unsure.rule": "Host(`unsure.test`)"},
        name=unsure_name,
    )
    served = docker_resources.run({"proxynow.http.routers.good.rule": f"Host(`{good}`)"})
    poll(_serves(proxy, good), TIMEOUT, "the good container's route")
    poll(_serves(proxy, legacy), TIMEOUT, "the route of the container with ipWhiteList")
    middleware_error = "tcp.middlewares.limit@docker is disabled: inFlightConn.amount"
    unsure_error = f"container {unsure_name!r}: label 'enable': expected a boolean, got 'maybe'"
    poll(lambda: middleware_error in proxy.stderr(), TIMEOUT, "the middleware's error")
    poll(lambda: unsure_error in proxy.stderr(), TIMEOUT, "the left-out container's error")
    # The provider goes on with later events, too.
    later = f"{docker_resources.name('later')}.test"
    docker_resources.run({"proxynow.http.routers.later.rule": f"Host(`{later}`)"})
    poll(_serves(proxy, later), TIMEOUT, "a container started afterwards")
    # The router using the bad middleware is not served: on the `tcp` entrypoint the
    # HTTP router answers, not the TCP router's backend (the bad container).
    status, body = http_get(proxy.ports["tcp"], "/cgi-bin/who", host=good, timeout=5)
    assert status == 200 and _field(body.decode(), "hostname") == served.id[:12] != bad.id[:12]
    assert _get(proxy, "unsure.test")[0] == 404
    log = proxy.stderr()
    assert "resynchronising" not in log and "unexpected error" not in log, log
    assert log.count(middleware_error) == 1 and log.count(unsure_error) == 1, log
    assert "tcp.routers.limited@docker is disabled" in log
    assert "tcp.middlewares.wl: ipWhiteList is deprecated, use ipAllowList" in log


class Outage:
    """Makes the Docker API unreachable and reachable again, for proxynow only.

    When this session started dockerd (as in CI), the daemon itself is stopped and
    started again (`--live-restore` keeps the containers serving meanwhile). Otherwise
    proxynow talks to Docker through a socket forwarder that is cut and restored: the
    daemon of the machine is never touched."""

    def __init__(self, engine: Engine, directory: Path) -> None:
        self.engine = engine
        self.forwarder = None if engine.daemon else SocketProxy(str(directory / "docker.sock"))

    @property
    def endpoint(self) -> str:
        return self.forwarder.endpoint if self.forwarder else "unix:///var/run/docker.sock"

    def begin(self) -> None:
        if self.forwarder is not None:
            self.forwarder.cut()
        else:
            self.engine.stop_daemon()

    def end(self) -> None:
        if self.forwarder is not None:
            self.forwarder.restore()
        else:
            self.engine.start_daemon()

    def close(self) -> None:
        if self.forwarder is not None:
            self.forwarder.cut()


def test_daemon_outage_keeps_serving_and_resynchronises(
    docker_engine: Engine,
    docker_resources: Resources,
    proxynow_factory: Callable[..., ProxynowProcess],
    tmp_path: Path,
) -> None:
    outage = Outage(docker_engine, tmp_path)
    try:
        proxy = proxynow_factory(_static(docker_engine, endpoint=outage.endpoint))
        before = f"{docker_resources.name('before')}.test"
        after = f"{docker_resources.name('after')}.test"
        docker_resources.run({"proxynow.http.routers.before.rule": f"Host(`{before}`)"})
        poll(_serves(proxy, before), TIMEOUT, "the route before the outage")
        outage.begin()
        poll(lambda: "cannot reach" in proxy.stderr(), TIMEOUT, "the outage to be reported")
        assert _get(proxy, before)[0] == 200  # the last snapshot keeps serving
        outage.end()
        docker_resources.run({"proxynow.http.routers.after.rule": f"Host(`{after}`)"})
        poll(_serves(proxy, after), TIMEOUT, "the route of a container started after it")
        assert proxy.stderr().count("cannot reach") == 1  # once per outage, not per retry
        assert _get(proxy, before)[0] == 200
    finally:
        outage.close()


def test_stopped_container_with_allownonrunning_is_listed_at_start(
    docker_engine: Engine,
    docker_resources: Resources,
    proxynow_factory: Callable[..., ProxynowProcess],
) -> None:
    kept = f"{docker_resources.name('kept')}.test"
    gone = f"{docker_resources.name('gone')}.test"
    labelled = docker_resources.run(
        {"proxynow.http.routers.kept.rule": f"Host(`{kept}`)",
         "proxynow.docker.allownonrunning": "true"}
    )  # fmt: skip
    plain = docker_resources.run({"proxynow.http.routers.gone.rule": f"Host(`{gone}`)"})
    labelled.stop(timeout=5)
    plain.stop(timeout=5)
    # Started after both stopped: only its initial listing can know them.
    proxy = proxynow_factory(_static(docker_engine))
    poll(_status_is(proxy, kept, 503), TIMEOUT, "the stopped container's router (503)")
    assert _get(proxy, gone)[0] == 404  # the same listing left the unlabelled one out
    labelled.start()
    poll(_serves(proxy, kept), TIMEOUT, "the route once it runs again")
    labelled.stop(timeout=5)
    poll(_status_is(proxy, kept, 503), TIMEOUT, "503 again after the stop event")


def test_network_mode_container_routes_to_the_owners_address(
    proxy: ProxynowProcess, docker_resources: Resources
) -> None:
    host = f"{docker_resources.name('shared')}.test"
    # The owner (think: a VPN container) serves port 80 and is not routed itself.
    owner = docker_resources.run({"proxynow.enable": "false"})
    dependent = docker_resources.run(
        {"proxynow.http.routers.shared.rule": f"Host(`{host}`)",
         "proxynow.http.services.shared.loadbalancer.server.port": "8080"},
        network_mode=f"container:{owner.name}", environment={"PORT": "8080"},
    )  # fmt: skip
    dependent.exec_run(["sh", "-c", "echo from-dependent > /www/who.txt"])

    def answered() -> str | None:
        status, body = _get(proxy, host, "/who.txt")
        return body if status == 200 else None

    # Only the dependent listens on 8080, and it has no address of its own: a 200 means
    # the router took the owner's address and reached the shared namespace.
    assert poll(answered, TIMEOUT, "the dependent through the owner's address").strip() == (
        "from-dependent"
    )
    dependent.reload()
    assert dependent.attrs["HostConfig"]["NetworkMode"] == f"container:{owner.id}"
    assert not dependent.attrs["NetworkSettings"]["Networks"]  # no address of its own
