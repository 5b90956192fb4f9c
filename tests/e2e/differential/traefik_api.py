"""Real Traefik with its file provider on a directory, read back through its API.

`running_traefik(directory, environ)` starts `.venv/bin/traefik` with the file provider
on `directory`, `api.insecure` on an entrypoint named `traefik` at 127.0.0.1:0 and a
`web` entrypoint for the routers (ports read from /proc; the API's is the one that
answers), waits by polling until the API lists `expected` routers (or the file
provider has reported), and stops Traefik by its PID on exit. `routers(port)` is the
parsed `/api/http/routers` list keyed by name.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.differential.traefik_harness import TRAEFIK, Process, _socket_inodes

__all__ = ["routers", "running_traefik"]


def routers(port: int) -> dict[str, dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/api/http/routers?per_page=10000"
    with urllib.request.urlopen(url, timeout=5) as response:
        data: list[dict[str, Any]] = json.load(response)
    return {router["name"]: router for router in data}


@contextlib.contextmanager
def running_traefik(
    directory: Path,
    environ: Mapping[str, str],
    expected: int,
    deadline_s: float = 30.0,
    watch: bool = False,
) -> Iterator[int]:
    """Traefik reading `directory`; yields the API port once `expected` routers show.

    With `watch`, Traefik applies every change at once (no throttle), so one Traefik can
    be fed file after file."""
    static = directory.parent / "traefik-static.yml"
    static.write_text(
        yaml.safe_dump(
            {
                "entryPoints": {
                    "traefik": {"address": "127.0.0.1:0"},
                    "web": {"address": "127.0.0.1:0"},
                },
                "api": {"insecure": True},
                "providers": {
                    "providersThrottleDuration": "0s",
                    "file": {"directory": str(directory), "watch": watch},
                },
                "log": {"level": "ERROR"},
            }
        )
    )
    popen = subprocess.Popen(
        [str(TRAEFIK), f"--configFile={static}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(environ),
    )
    process = Process(popen)
    try:
        yield _wait_for_routers(popen, expected, deadline_s)
    finally:
        process.stop()


def _wait_for_routers(popen: subprocess.Popen[bytes], expected: int, deadline_s: float) -> int:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise RuntimeError(f"traefik exited with {popen.returncode}")
        for port in _v4_ports(popen.pid):  # the API's, or the `web` entrypoint's
            with contextlib.suppress(OSError, ValueError):
                if len(routers(port)) >= expected:
                    return port
        time.sleep(0.05)  # polling a condition with a deadline
    raise TimeoutError(f"traefik did not show {expected} routers in time")


def _v4_ports(pid: int) -> list[int]:
    """Every IPv4 port `pid` listens on, read from /proc."""
    inodes = _socket_inodes(pid)
    ports = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and fields[9] in inodes:
            ports.append(int(fields[1].rsplit(":", 1)[1], 16))
    return ports
