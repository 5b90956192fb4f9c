"""compose-examples/basic/ brought up for real with Debian's `docker-compose` (1.29).

The images are this session's (the Dockerfile's image, the busybox backend), passed by the
variables the example reads; the published ports are free ones on 127.0.0.1. An override
file limits proxynow to this project's containers (other stacks may share the daemon).
`down -v` must leave no container, network or volume of the project behind.
"""

from __future__ import annotations

import http.client
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.docker.conftest import Engine
from tests.e2e.image.conftest import BuiltImage
from tests.support.image import REPO
from tests.support.proc import poll

EXAMPLE = REPO / "compose-examples" / "basic" / "docker-compose.yml"
TIMEOUT = 30.0
PROJECT_LABEL = "com.docker.compose.project"
OVERRIDE = """version: "2.4"
services:
  proxynow:
    environment:
      PROXYNOW_PROVIDERS_DOCKER_CONSTRAINTS: "Label(`{label}`,`{project}`)"
"""


class Stack:
    def __init__(self, project: str, override: Path, env: dict[str, str]) -> None:
        self.project = project
        self.override = override
        self.env = env

    def compose(self, *args: str) -> str:
        command = ["docker-compose", "-p", self.project, "-f", str(EXAMPLE)]
        result = subprocess.run(
            [*command, "-f", str(self.override), *args],
            env=self.env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert result.returncode == 0, f"docker-compose {args}:\n{result.stderr}"
        return result.stdout

    def port(self, service: str, port: int) -> int:
        published = self.compose("port", service, str(port)).strip()
        return int(published.rsplit(":", 1)[1])


@pytest.fixture
def stack(
    docker_engine: Engine, proxynow_image: BuiltImage, backend_image: str, tmp_path: Path
) -> Iterator[Stack]:
    project = f"{docker_engine.prefix}-basic"
    override = tmp_path / "override.yml"
    override.write_text(OVERRIDE.format(label=PROJECT_LABEL, project=project))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROXYNOW_")}
    env.update(
        PROXYNOW_IMAGE=proxynow_image.tag,
        BACKEND_IMAGE=backend_image,
        DOCKER_GID=str(os.stat("/var/run/docker.sock").st_gid),
        PROXYNOW_HTTP="127.0.0.1:",
        PROXYNOW_HTTPS="127.0.0.1:",
        PROXYNOW_DASHBOARD="127.0.0.1:",
    )
    stack = Stack(project, override, env)
    try:
        stack.compose("up", "-d")
        yield stack
    finally:
        stack.compose("down", "-v", "--remove-orphans", "-t", "10")


def _get(port: int, path: str, host: str = "localhost") -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path, headers={"Host": host, "Connection": "close"})
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    except OSError:  # the published port answers before proxynow listens
        return 0, ""
    finally:
        connection.close()


def _answers(port: int, path: str, host: str = "localhost") -> Callable[[], str | None]:
    def check() -> str | None:
        status, body = _get(port, path, host)
        return body if status == 200 else None

    return check


def _leftovers(engine: Engine, project: str) -> list[Any]:
    label = {"label": f"{PROJECT_LABEL}={project}"}
    client = engine.client
    return [
        *client.containers.list(all=True, filters=label),
        *client.networks.list(filters=label),
        *client.volumes.list(filters=label),
    ]


def test_basic_routes_by_host_and_down_cleans_up(stack: Stack, docker_engine: Engine) -> None:
    web = stack.port("proxynow", 80)
    for service in ("app", "blog"):
        host = f"{service}.localhost"
        body = poll(_answers(web, "/cgi-bin/who", host), TIMEOUT, f"{host} through proxynow")
        assert re.search(r"^hostname=(.*)$", body, re.M)[1] == service  # type: ignore[index]
    assert _get(web, "/cgi-bin/who", "nobody.localhost")[0] == 404
    api = stack.port("proxynow", 8080)
    routers = poll(_answers(api, "/api/http/routers"), TIMEOUT, "the API")
    assert "app@docker" in routers and "blog@docker" in routers
    assert _get(api, "/ping") == (200, "OK")
    stack.compose("down", "-v", "--remove-orphans", "-t", "10")
    assert _leftovers(docker_engine, stack.project) == []
