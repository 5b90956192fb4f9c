"""`proxynow healthcheck` against a real `proxynow run`: 0 while it serves /ping, 1 when
nothing answers, when /ping is not configured, and when the answer is not 200."""

from __future__ import annotations

import contextlib
import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.proc import start_proxynow


def healthcheck(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROXYNOW_")}
    return subprocess.run(
        [sys.executable, "-m", "proxynow", "healthcheck", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip


def test_healthy_while_serving_then_not(tmp_path: Path) -> None:
    static = {"entryPoints": {"traefik": {"address": "127.0.0.1:0"}}, "ping": {}}
    proxy = start_proxynow(tmp_path, static, workers=1)
    port = proxy.ports["traefik"]
    flags = ("--ping", f"--entryPoints.traefik.address=127.0.0.1:{port}")
    try:
        ok = healthcheck(*flags, cwd=tmp_path)
        assert ok.returncode == 0, ok.stderr
        assert f"http://127.0.0.1:{port}/ping: 200" in ok.stdout
    finally:
        assert proxy.stop() == 0
    down = healthcheck(*flags, "--timeout", "1", cwd=tmp_path)
    assert down.returncode == 1
    assert f"http://127.0.0.1:{port}/ping" in down.stderr


def test_not_configured(tmp_path: Path) -> None:
    result = healthcheck("--entryPoints.web.address=:0", cwd=tmp_path)
    assert result.returncode == 1
    assert "ping is not enabled" in result.stderr


class _Status(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def answers_503() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Status)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_not_200_is_unhealthy(tmp_path: Path, answers_503: int) -> None:
    result = healthcheck("--ping", f"--entryPoints.traefik.address=:{answers_503}", cwd=tmp_path)
    assert result.returncode == 1
    assert "503" in result.stderr


def test_silent_listener_times_out(tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        result = healthcheck(
            "--ping", f"--entryPoints.traefik.address=:{port}", "--timeout", "0.5", cwd=tmp_path
        )
    assert result.returncode == 1
    assert "timed out" in result.stderr or "no answer within 0.5s" in result.stderr


def _drip(listener: socket.socket) -> None:
    """Answer a status line, then one header byte every 0.1 s, forever."""
    connection, _ = listener.accept()
    with connection:
        connection.sendall(b"HTTP/1.1 200 OK\r\n")
        with contextlib.suppress(OSError):
            while True:
                connection.sendall(b"X")
                time.sleep(0.1)  # the slow peer under test, not a readiness wait


def test_dripping_endpoint_is_cut_at_the_deadline(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        threading.Thread(target=_drip, args=(listener,), daemon=True).start()
        port = listener.getsockname()[1]
        started = time.monotonic()
        result = healthcheck(
            "--ping", f"--entryPoints.traefik.address=:{port}", "--timeout", "1", cwd=tmp_path
        )
    assert result.returncode == 1
    assert "no answer within 1s" in result.stderr
    assert time.monotonic() - started < 10


def test_flags_without_command_mean_run(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROXYNOW_")}
    result = subprocess.run(
        [sys.executable, "-m", "proxynow", "--entryPoints.web.address=nonsense"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 1
    assert "invalid address" in result.stderr
