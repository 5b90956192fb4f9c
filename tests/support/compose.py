"""A compose-examples/ stack run for real with the engine's compose tool.

`docker compose` (v2) when the Docker CLI has it, else Debian's `docker-compose` (1.29):
both read the examples unchanged. A `Stack` is one project: its name and files are given
by `COMPOSE_PROJECT_NAME` and `COMPOSE_FILE` (the example's file, then an override file
of the test's), so that the commands a test runs are the ones a user types
(`docker compose up -d` in the example's folder). Containers, networks and volumes are
found by the project label compose puts on everything it makes.
"""

from __future__ import annotations

import functools
import http.client
import ipaddress
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.image import REPO

EXAMPLES = REPO / "compose-examples"
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
COMMAND_TIMEOUT = 180.0
# What the test's override adds to every example: proxynow considers only this
# project's containers (other stacks may share the daemon).
CONSTRAINED = """version: "2.4"
services:
  {proxy}:
    environment:
      PROXYNOW_PROVIDERS_DOCKER_CONSTRAINTS: "Label(`{label}`,`{project}`)"
"""


@functools.cache
def compose_command() -> tuple[str, ...]:
    """`docker compose` if the CLI has the plugin, else `docker-compose`; neither fails."""
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if probe.returncode == 0:
        return ("docker", "compose")
    found = shutil.which("docker-compose")
    assert found, "neither `docker compose` nor `docker-compose` is installed"
    return (found,)


def bridge_address() -> str:
    """The host's address on Docker's default bridge (`docker0`): a local address that
    containers on any bridge network reach through their gateway."""
    shown = subprocess.run(
        ["ip", "-j", "-4", "addr", "show", "dev", "docker0"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    (interface,) = json.loads(shown.stdout)
    address = str(interface["addr_info"][0]["local"])
    assert ipaddress.ip_address(address).is_private, address
    return address


def base_env(**variables: str) -> dict[str, str]:
    """The environment of a compose command: this one without PROXYNOW_* (which would
    reach the test's own proxynow), plus `variables`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROXYNOW_")}
    env.update(variables)
    return env


@dataclass
class Stack:
    project: str
    directory: Path  # the example's folder
    env: dict[str, str]  # COMPOSE_PROJECT_NAME, COMPOSE_FILE and the example's variables
    client: Any  # docker.DockerClient
    proxy: str = "proxynow"  # the compose service that runs proxynow

    def compose(self, *args: str, env: Mapping[str, str] | None = None) -> str:
        """Run the compose tool with `args` in the example's folder; its stdout."""
        result = subprocess.run(
            [*compose_command(), *args],
            cwd=self.directory, env=dict(env or self.env), capture_output=True, text=True,
            timeout=COMMAND_TIMEOUT, check=False,
        )  # fmt: skip
        assert result.returncode == 0, f"compose {args}:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def containers(self, service: str | None = None) -> list[Any]:
        """The project's containers (of one service), running or not, by name."""
        labels = [f"{PROJECT_LABEL}={self.project}"]
        if service is not None:
            labels.append(f"{SERVICE_LABEL}={service}")
        found = self.client.containers.list(all=True, filters={"label": labels})
        return sorted(found, key=lambda c: c.name)

    def published(self, service: str | None = None) -> dict[int, int]:
        """Container port -> host port of the (proxy) service's published TCP ports."""
        (container,) = self.containers(service or self.proxy)
        container.reload()
        ports: dict[str, Any] = container.attrs["NetworkSettings"]["Ports"] or {}
        return {
            int(spec.split("/")[0]): int(bindings[0]["HostPort"])
            for spec, bindings in ports.items()
            if spec.endswith("/tcp") and bindings
        }

    def logs(self) -> str:
        return "\n".join(
            f"--- {c.name}\n{c.logs(tail=80).decode(errors='replace')}" for c in self.containers()
        )

    def down(self) -> None:
        self.compose("down", "-v", "--remove-orphans", "-t", "10")

    def leftovers(self) -> list[Any]:
        """What the project still has: containers, networks, volumes (empty after down)."""
        label = {"label": f"{PROJECT_LABEL}={self.project}"}
        return [
            *self.client.containers.list(all=True, filters=label),
            *self.client.networks.list(filters=label),
            *self.client.volumes.list(filters=label),
        ]


def make_stack(
    client: Any,
    project: str,
    example: str,
    override_dir: Path,
    *,
    override: str = "",
    proxy: str = "proxynow",
    **variables: str,
) -> Stack:
    """A stack of compose-examples/`example` under the name `project`, with proxynow
    constrained to the project and `override` (YAML services, merged after) added."""
    directory = EXAMPLES / example
    assert (directory / "docker-compose.yml").is_file(), directory
    constrained = override_dir / "constrained.yml"
    constrained.write_text(CONSTRAINED.format(proxy=proxy, label=PROJECT_LABEL, project=project))
    files = [str(directory / "docker-compose.yml"), str(constrained)]
    if override:
        extra = override_dir / "override.yml"
        extra.write_text(override)
        files.append(str(extra))
    env = base_env(COMPOSE_PROJECT_NAME=project, COMPOSE_FILE=os.pathsep.join(files), **variables)
    return Stack(project, directory, env, client, proxy)


def get(
    stack: Stack, host: str, path: str, *, port: int = 80, headers: Mapping[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    """GET `path` with `Host: host` through the stack's published `port` on 127.0.0.1:
    (status, headers with lowercase names, body); status 0 when the connection fails
    (the published port answers before proxynow listens)."""
    connection = http.client.HTTPConnection("127.0.0.1", stack.published()[port], timeout=5)
    try:
        connection.request("GET", path, headers={"Host": host, **(headers or {})})
        response = connection.getresponse()
        head = {k.lower(): v for k, v in response.getheaders()}
        return response.status, head, response.read().decode(errors="replace")
    except OSError:
        return 0, {}, ""
    finally:
        connection.close()
