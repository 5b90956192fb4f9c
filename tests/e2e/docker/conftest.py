"""Docker fixtures: a running dockerd, a locally imported backend image, cleanup by id.

`docker_engine` uses the daemon that answers `docker info`, or starts `dockerd` and stops
it by its PID at the end of the session. `backend_image` builds, once per session, a ~2 MB
image from the static busybox (`docker import`, no registry): `httpd` serving `/www` with a
CGI script at `/cgi-bin/who` that prints the hostname, the Host header, the URI and the
client address (to tell replicas and networks apart). `docker_resources` records every
container and network a test creates and removes them by id afterwards; the image is
removed by id at the end of the session. Nothing the tests did not create is touched.
"""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.support.docker import (
    build_backend_image,
    ensure_dockerd,
    start_dockerd,
    stop_dockerd,
)
from tests.support.proc import ProxynowProcess, start_proxynow


@dataclass
class Engine:
    client: docker.DockerClient
    prefix: str
    log_path: Path
    daemon: subprocess.Popen[bytes] | None  # the dockerd this session started, if any

    def stop_daemon(self) -> None:
        assert self.daemon is not None
        stop_dockerd(self.daemon)

    def start_daemon(self) -> None:
        self.daemon = start_dockerd(self.log_path)


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    log_path = tmp_path_factory.mktemp("dockerd") / "dockerd.log"
    daemon = ensure_dockerd(log_path)
    try:
        client = docker.DockerClient(base_url="unix:///var/run/docker.sock", version="auto")
    except BaseException:
        if daemon is not None:
            stop_dockerd(daemon)
        raise
    engine = Engine(client, f"pntest-{uuid.uuid4().hex[:8]}", log_path, daemon)
    try:
        yield engine
    finally:
        client.close()
        if engine.daemon is not None and engine.daemon.poll() is None:
            stop_dockerd(engine.daemon)


@pytest.fixture(scope="session")
def backend_image(docker_engine: Engine) -> Iterator[str]:
    """The busybox httpd image's tag (unique per session), removed by id at the end."""
    tag = f"{docker_engine.prefix}-backend:latest"
    build_backend_image(tag)
    image_id = docker_engine.client.images.get(tag).id
    try:
        yield tag
    finally:
        docker_engine.client.images.remove(image_id, force=True)


@dataclass
class Resources:
    """Creates containers and networks for one test and removes them by id."""

    engine: Engine
    image: str
    containers: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)

    def name(self, hint: str) -> str:
        return f"{self.engine.prefix}-{hint}-{uuid.uuid4().hex[:6]}"

    def run(self, labels: dict[str, str], **options: Any) -> Any:
        """Start a backend container (detached) with the session's test label added."""
        labels = {"proxynow.test": self.engine.prefix, **labels}
        options.setdefault("name", self.name("c"))
        container = self.engine.client.containers.run(
            self.image, detach=True, labels=labels, **options
        )
        self.containers.append(container.id)
        return container

    def network(self) -> Any:
        network = self.engine.client.networks.create(self.name("net"), driver="bridge")
        self.networks.append(network.id)
        return network

    def cleanup(self) -> None:
        for identifier in reversed(self.containers):
            with contextlib.suppress(docker.errors.NotFound):
                self.engine.client.containers.get(identifier).remove(force=True)
        for identifier in self.networks:
            with contextlib.suppress(docker.errors.NotFound):
                self.engine.client.networks.get(identifier).remove()


@pytest.fixture(scope="module")
def proxy(
    docker_engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxynowProcess]:
    """`proxynow run` with the Docker provider, reading only this session's containers, one
    per module (test_e2e.py has its own)."""
    engine, directory = docker_engine, tmp_path_factory.mktemp("proxynow")
    static = {
        "entryPoints": {"web": {"address": "127.0.0.1:0"}},
        "log": {"level": "WARN"},
        "providers": {
            "providersThrottleDuration": "10ms",
            "docker": {"constraints": f"Label(`proxynow.test`,`{engine.prefix}`)"},
        },
    }
    process = start_proxynow(directory, static)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def docker_resources(docker_engine: Engine, backend_image: str) -> Iterator[Resources]:
    resources = Resources(docker_engine, backend_image)
    try:
        yield resources
    finally:
        resources.cleanup()
