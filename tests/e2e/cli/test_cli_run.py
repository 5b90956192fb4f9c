"""`proxynow run` with no configuration at all serves a useful default and says where."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SERVING = re.compile(rb"serving HTTP on http://0\.0\.0\.0:(\d+) \(entrypoint web\)")
API_LINE = re.compile(rb"API on http://127\.0\.0\.1:(\d+)/api/ \(entrypoint traefik\)")


@pytest.fixture
def bare_run(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """`proxynow run` in an empty directory, with no config file to be found anywhere."""
    env = dict(os.environ, HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    env = {k: v for k, v in env.items() if not k.startswith("PROXYNOW_")}
    log = tmp_path / "stderr.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "proxynow", "run"],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        yield process, log
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def _wait_for_port(
    process: subprocess.Popen[bytes], log: Path, line: re.Pattern[bytes] = SERVING
) -> int:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = line.search(log.read_bytes())
        if found:
            return int(found.group(1))
        assert process.poll() is None, log.read_text()
        time.sleep(0.05)  # polling the log for the start-up line, not waiting blindly
    raise AssertionError(f"no start-up line: {log.read_text()}")


def _get_until_served(port: int, path: str = "/") -> tuple[http.client.HTTPResponse, bytes]:
    deadline = time.monotonic() + 20
    while True:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", path, headers={"Host": "nothing.example"})
            response = connection.getresponse()
            return response, response.read()
        except ConnectionError:
            if time.monotonic() > deadline:
                raise
        finally:
            connection.close()


def test_run_without_configuration_serves_and_says_where(
    bare_run: tuple[subprocess.Popen[bytes], Path],
) -> None:
    process, log = bare_run
    port = _wait_for_port(process, log)
    expected = 80 if os.geteuid() == 0 else 8000
    assert port in (expected, 8000)  # :80 may be taken by another program: then :8000
    response, _ = _get_until_served(port)
    assert response.status == 404  # serving, with no router yet
    # The API, on loopback: 8080 unless another program holds it (then the kernel's pick).
    api_port = _wait_for_port(process, log, API_LINE)
    response, body = _get_until_served(api_port, "/api/version")
    assert response.status == 200
    assert json.loads(body)["Version"]
    line = b"serving HTTP on http://127.0.0.1:%d (entrypoint traefik)" % api_port
    assert line in log.read_bytes()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert b"Traceback" not in log.read_bytes()
