"""The image built from the Dockerfile, run with `docker run` as a user would.

proxynow runs in a container next to a labelled busybox backend, with the Docker socket
mounted read-only and the socket's group added (the image's user is not root). It is
reached from the host on its bridge IP. `net.ipv4.ip_unprivileged_port_start` is set back
to 1024 in these containers (Docker 20.10 sets it to 0 by default), so that binding :80
proves the file capability of the image's interpreter, as on hosts and runtimes that
keep the kernel's default.
"""

from __future__ import annotations

import http.client
import os
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import docker
import pytest

from tests.e2e.docker.conftest import Resources
from tests.e2e.image.conftest import BuiltImage
from tests.support.proc import poll

DOCKER_SOCKET = "/var/run/docker.sock"
TIMEOUT = 30.0
UID = 10001
CAP_NET_BIND_SERVICE = 10
PRIVILEGED_PORTS = {"net.ipv4.ip_unprivileged_port_start": "1024"}
SLOW_CGI = '#!/bin/sh\nsleep 2\nprintf "Content-Type: text/plain\\r\\n\\r\\n"\necho slow-done\n'


def _run_proxynow(resources: Resources, image: BuiltImage, *flags: str, **options: Any) -> Any:
    """Start the proxynow image (detached) with the image's CMD replaced by `flags`,
    considering only this session's containers."""
    prefix = resources.engine.prefix
    command = [
        "--providers.docker",
        f"--providers.docker.constraints=Label(`proxynow.test`,`{prefix}`)",
        "--providers.providersThrottleDuration=10ms",
        "--entryPoints.web.address=:80",
        "--api.insecure=true",
        *flags,
    ]
    container = resources.engine.client.containers.run(
        image.tag,
        command=command,
        detach=True,
        name=resources.name("proxynow"),
        group_add=[str(os.stat(DOCKER_SOCKET).st_gid)],
        volumes={DOCKER_SOCKET: {"bind": DOCKER_SOCKET, "mode": "ro"}},
        sysctls=PRIVILEGED_PORTS,
        labels={"proxynow.enable": "false"},
        **options,
    )
    resources.containers.append(container.id)
    return container


def _ip(container: Any) -> str:
    container.reload()
    address: str = container.attrs["NetworkSettings"]["IPAddress"]
    assert address, container.attrs["NetworkSettings"]
    return address


def _get(address: str, host: str, path: str, timeout: float = 5) -> tuple[int, str]:
    connection = http.client.HTTPConnection(address, 80, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Host": host, "Connection": "close"})
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


def _serves(address: str, host: str, path: str = "/cgi-bin/who") -> Callable[[], str | None]:
    def check() -> str | None:
        try:
            status, body = _get(address, host, path)
        except OSError:
            return None
        return body if status == 200 else None

    return check


def _poll(proxy: Any, condition: Callable[[], Any], what: str) -> Any:
    """`poll`, with the proxynow container's output in the failure."""
    try:
        return poll(condition, TIMEOUT, what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{proxy.logs().decode(errors='replace')}") from None


def _backend(resources: Resources, host: str) -> Any:
    return resources.run({"proxynow.http.routers.app.rule": f"Host(`{host}`)"})


def test_image_is_slim(proxynow_image: BuiltImage, docker_resources: Resources) -> None:
    """No compiler, no pip, no sources or tests in the final image."""
    client = docker_resources.engine.client
    listing = client.containers.run(
        proxynow_image.tag,
        entrypoint=["/bin/sh", "-c"],
        command=[
            "for f in /usr/bin/gcc /usr/bin/cc /src /opt/proxynow/bin/pip /root/.cache"
            " /opt/proxynow/lib/python3*/site-packages/tests /opt/proxynow/lib/python3*/"
            'site-packages/bench; do [ -e "$f" ] && echo "present: $f"; done;'
            " /usr/bin/python3 -c 'import proxynow' 2>/dev/null && echo 'proxynow outside venv';"
            " echo checked"
        ],
        remove=True,
    ).decode()
    assert listing.strip() == "checked", listing
    assert proxynow_image.size < 250e6, proxynow_image.size


def test_http2_codec_is_libnghttp2(proxynow_image: BuiltImage, docker_resources: Resources) -> None:
    """The image serves HTTP/2 with libnghttp2, not the slower `h2` fallback (docs/http2.md)."""
    client = docker_resources.engine.client
    output = client.containers.run(
        proxynow_image.tag,
        entrypoint=["/opt/proxynow/bin/python", "-c"],
        command=[
            "from proxynow.edge.http2.choice import codec_factory;"
            " from proxynow.edge.http2 import ngcodec;"
            " print(codec_factory().__name__, ngcodec.version())"
        ],
        environment={"PROXYNOW_H2_CODEC": "nghttp2"},
        remove=True,
    ).decode()
    name, version = output.split()
    assert name == "NgCodec", output
    assert version.split(".")[0] == "1", output


def test_serves_labelled_container_as_non_root_on_80(
    proxynow_image: BuiltImage, docker_resources: Resources
) -> None:
    host = f"{docker_resources.name('app')}.test"
    backend = _backend(docker_resources, host)
    proxy = _run_proxynow(docker_resources, proxynow_image)
    body = _poll(proxy, _serves(_ip(proxy), host), "the labelled route through the image")
    assert f"hostname={backend.id[:12]}" in body
    status = proxy.exec_run(["cat", "/proc/1/status"]).output.decode()
    uids = re.search(r"^Uid:\s+(\d+)\s+(\d+)", status, re.M)
    assert uids is not None and uids.groups() == (str(UID), str(UID)), status
    effective = re.search(r"^CapEff:\s+([0-9a-f]+)", status, re.M)
    assert effective is not None
    assert int(effective[1], 16) == 1 << CAP_NET_BIND_SERVICE  # that one, nothing more
    assert proxy.exec_run(["id", "-u"]).output.decode().strip() == str(UID)


def test_the_interpreter_without_the_capability_cannot_bind_80(
    proxynow_image: BuiltImage, docker_resources: Resources
) -> None:
    """The control for the test above: the system python, as the same user, may not."""
    with pytest.raises(docker.errors.ContainerError, match="Permission denied"):
        docker_resources.engine.client.containers.run(
            proxynow_image.tag,
            entrypoint=["/usr/bin/python3", "-c"],
            command=["import socket; socket.socket().bind(('', 80))"],
            sysctls=PRIVILEGED_PORTS,
            remove=True,
        )


def _health(container: Any) -> dict[str, Any]:
    container.reload()
    health: dict[str, Any] = container.attrs["State"].get("Health") or {}
    return health


def test_reports_healthy(proxynow_image: BuiltImage, docker_resources: Resources) -> None:
    """The image's HEALTHCHECK (`proxynow healthcheck`), run every second here."""
    proxy = _run_proxynow(docker_resources, proxynow_image, healthcheck={"interval": 1_000_000_000})
    _poll(proxy, lambda: _health(proxy).get("Status") == "healthy", "status healthy")
    last = _health(proxy)["Log"][-1]
    assert last["ExitCode"] == 0
    assert "http://127.0.0.1:8080/ping: 200" in last["Output"]


def test_unhealthy_without_ping(proxynow_image: BuiltImage, docker_resources: Resources) -> None:
    """The same check fails when /ping does not answer (ping moved to a missing entrypoint)."""
    proxy = _run_proxynow(
        docker_resources,
        proxynow_image,
        "--ping.entryPoint=nowhere",
        healthcheck={"interval": 1_000_000_000, "retries": 1},
    )
    _poll(proxy, lambda: _health(proxy).get("Status") == "unhealthy", "status unhealthy")
    assert _health(proxy)["Log"][-1]["ExitCode"] == 1


def test_docker_stop_drains_and_exits_0(
    proxynow_image: BuiltImage, docker_resources: Resources
) -> None:
    host = f"{docker_resources.name('slow')}.test"
    backend = _backend(docker_resources, host)
    script = 'printf "%s" "$0" > /www/cgi-bin/slow && chmod 755 /www/cgi-bin/slow'
    assert backend.exec_run(["sh", "-c", script, SLOW_CGI]).exit_code == 0
    proxy = _run_proxynow(docker_resources, proxynow_image)
    address = _ip(proxy)
    _poll(proxy, _serves(address, host, "/cgi-bin/slow"), "the slow route")
    answers: list[tuple[int, str]] = []
    request = threading.Thread(target=lambda: answers.append(_get(address, host, "/cgi-bin/slow")))
    request.start()
    poll(lambda: "sleep 2" in str(backend.top()["Processes"]), TIMEOUT, "the request in flight")
    started = time.monotonic()
    proxy.stop(timeout=20)
    stopped_after = time.monotonic() - started
    request.join(TIMEOUT)
    assert answers == [(200, "slow-done\n")]
    proxy.reload()
    assert proxy.attrs["State"]["ExitCode"] == 0, proxy.logs().decode()
    assert stopped_after < 10, stopped_after  # drained, not killed after the timeout
