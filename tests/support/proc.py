"""Run a real `proxynow run` for end-to-end tests, and thread-based backends for it.

`proxynow_factory` is a pytest fixture giving `start(static, dynamic=None, workers=2)`:
it writes the static YAML (and the dynamic file, wired as the file provider), starts
`python -m proxynow run --config <file>` with a control socket, waits for readiness by
polling (the "serving ... (entrypoint X)" lines on stderr give the real ports; the
control socket tells when every worker serves the first file snapshot) and stops the
process by its PID at teardown (SIGTERM, then SIGKILL past a deadline).

Entrypoint addresses should be `127.0.0.1:0`: the control plane binds them first, so
port 0 becomes one real port shared by every worker, and no test races for a port.

Backends run in threads (`ThreadedServer`), so tests can be plain synchronous code with
blocking clients while the proxy runs in its own processes.
"""

from __future__ import annotations

import http.client
import http.server
import os
import re
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from proxynow.control.run import control_request

__all__ = [
    "HttpBackend",
    "ProxynowProcess",
    "ThreadedServer",
    "http_get",
    "poll",
    "proxynow_factory",
    "start_proxynow",
]

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
_SERVING = re.compile(r"serving (\w+) on (\w+)://(\S+):(\d+) \(entrypoint (\S+)\)")


def poll(condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Call `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


@dataclass
class ProxynowProcess:
    """A running `proxynow run` and what a test needs to talk to it."""

    process: subprocess.Popen[bytes]
    directory: Path
    control_path: Path
    stderr_path: Path
    dynamic_path: Path | None
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def request(self, op: str) -> dict[str, Any]:
        """One request on the control socket."""
        return control_request(self.control_path, op)

    def status(self) -> dict[str, Any]:
        return self.request("status")

    def metrics(self) -> list[dict[str, Any]]:
        workers: list[dict[str, Any]] = self.request("metrics")["workers"]
        return workers

    def worker_pids(self) -> list[int]:
        return [w["pid"] for w in self.status()["workers"]]

    def wait_serving(self, min_version: int = 0, timeout: float = START_TIMEOUT) -> int:
        """Wait until every worker is ready and serves the control plane's latest version
        (at least `min_version`); return that version."""

        def serving() -> tuple[int] | None:
            status = self.status()
            version = status["version"]
            if version < min_version:
                return None
            ok = all(w["ready"] and w["version"] >= version for w in status["workers"])
            # A tuple, so that version 0 (no dynamic configuration) still counts as found.
            return (version,) if ok else None

        found: tuple[int] = poll(serving, timeout, f"workers serving version >= {min_version}")
        return found[0]

    def write_dynamic(self, dynamic: dict[str, Any]) -> None:
        """Replace the dynamic file atomically (the file provider sees one complete file)."""
        assert self.dynamic_path is not None
        temporary = self.dynamic_path.with_suffix(".tmp")
        temporary.write_text(yaml.safe_dump(dynamic))
        os.replace(temporary, self.dynamic_path)

    def signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def wait_exit(self, timeout: float = STOP_TIMEOUT) -> int:
        return self.process.wait(timeout)

    def stop(self) -> int:
        """SIGTERM, wait for the drain, SIGKILL if it does not end; the exit code."""
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                return self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


def start_proxynow(
    directory: Path,
    static: dict[str, Any],
    dynamic: dict[str, Any] | None = None,
    *,
    workers: int = 2,
    wait: bool = True,
    env: dict[str, str] | None = None,
) -> ProxynowProcess:
    """Start `proxynow run` in `directory`; with `wait`, return once it fully serves.
    `env` is added to this process's environment for it."""
    directory.mkdir(parents=True, exist_ok=True)
    static = dict(static)
    static.setdefault("workers", workers)
    dynamic_path = None
    if dynamic is not None:
        dynamic_path = directory / "dynamic.yml"
        dynamic_path.write_text(yaml.safe_dump(dynamic))
        providers = dict(static.get("providers", {}))
        providers.setdefault("providersThrottleDuration", "10ms")
        providers["file"] = {"filename": str(dynamic_path), "watch": True}
        static["providers"] = providers
    static_path = directory / "static.yml"
    static_path.write_text(yaml.safe_dump(static))
    stderr_path = directory / "stderr.log"
    control_path = directory / "control.sock"
    environment = dict(os.environ, **(env or {}), PROXYNOW_CONTROL_SOCKET=str(control_path))
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "proxynow", "run", "--config", str(static_path)],
            cwd=directory,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
        )
    proxy = ProxynowProcess(process, directory, control_path, stderr_path, dynamic_path)
    if wait:
        try:
            _wait_ready(proxy, set(static.get("entryPoints", {})), dynamic is not None)
        except BaseException:
            proxy.stop()
            raise
    return proxy


def _wait_ready(proxy: ProxynowProcess, entrypoints: set[str], has_dynamic: bool) -> None:
    def announced() -> bool:
        if proxy.process.poll() is not None:
            raise AssertionError(f"proxynow exited early:\n{proxy.stderr()}")
        for match in _SERVING.finditer(proxy.stderr()):
            proxy.ports[match.group(5)] = int(match.group(4))
        return entrypoints <= set(proxy.ports) and proxy.control_path.exists()

    poll(announced, START_TIMEOUT, "the serving lines and the control socket")
    proxy.wait_serving(1 if has_dynamic else 0)


@pytest.fixture
def proxynow_factory(tmp_path: Path) -> Iterator[Callable[..., ProxynowProcess]]:
    """`start(static, dynamic=None, workers=2, wait=True, env=None)`; every process stopped
    at the end."""
    started: list[ProxynowProcess] = []

    def start(
        static: dict[str, Any],
        dynamic: dict[str, Any] | None = None,
        *,
        workers: int = 2,
        wait: bool = True,
        env: dict[str, str] | None = None,
    ) -> ProxynowProcess:
        proxy = start_proxynow(
            tmp_path / f"proxynow{len(started)}",
            static,
            dynamic,
            workers=workers,
            wait=wait,
            env=env,
        )
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


# ---------------------------------------------------------------- backends


class ThreadedServer:
    """A TCP server on 127.0.0.1:0 running `handler(connection)` in a thread per client."""

    def __init__(self, handler: Callable[[socket.socket], None], host: str = "127.0.0.1"):
        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                handler(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

        self._server = Server((host, 0), Handler)
        self.port: int = self._server.server_address[1]
        self.address = f"{host}:{self.port}" if ":" not in host else f"[{host}]:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def __enter__(self) -> ThreadedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class HttpBackend:
    """A threaded HTTP/1.1 backend on 127.0.0.1:0.

    Every request is answered 200 with `<name> <path>`; a path starting with `/slow`
    waits until `release` is set (and `arrived` is set when such a request comes in);
    `/health` answers 200 while `healthy` is true, else 503 (for health-check tests).
    """

    def __init__(self, name: str = "backend") -> None:
        self.name = name
        self.healthy = True
        self.release = threading.Event()
        self.arrived = threading.Event()
        self.requests = 0
        backend = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body are two writes: without this, Nagle holds the body back
            # until the proxy's delayed ACK (40 ms) of the headers.
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                backend.requests += 1
                status = 200
                if self.path.startswith("/slow"):
                    backend.arrived.set()
                    backend.release.wait(60)
                if self.path == "/health":
                    status, body = (200, b"ok") if backend.healthy else (503, b"sick")
                else:
                    body = f"{name} {self.path}".encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port: int = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def __enter__(self) -> HttpBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def http_get(
    port: int, path: str = "/", host: str = "app.test", timeout: float = 20
) -> tuple[int, bytes]:
    """One request on a new connection: (status, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Host": host, "Connection": "close"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()
