"""Differential-test plumbing: start real Traefik, send raw requests, ask proxynow.

The request list and the router file are data; this module only moves bytes. The proxynow
side is ``InProcessProxynow.answer`` until the HTTP server serves; the ``proxynow_answer``
fixture in test_traefik.py is the one place to switch to the real server.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from proxynow.edge.http.exchange import valid_host
from proxynow.rules import Route, RouteTable, SimpleRequest, compile_table
from proxynow.rules.compiler import compile_predicate
from proxynow.rules.parser import parse_rule
from tests.support.differential import RawRequest

HERE = Path(__file__).parent
ROUTERS_FILE = HERE / "routers.yml"
REPO = HERE.parents[2]
TRAEFIK = REPO / ".venv" / "bin" / "traefik"
NOT_FOUND = "404"


@dataclass(slots=True)
class Process:
    """A started child process; ``stop`` terminates it by PID and waits."""

    popen: subprocess.Popen[bytes]
    cleanup: list[Callable[[], None]] = field(default_factory=list)

    def stop(self) -> None:
        if self.popen.stdout is not None:
            self.popen.stdout.close()
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def load_routers() -> dict[str, dict[str, object]]:
    data = yaml.safe_load(ROUTERS_FILE.read_text(encoding="utf-8"))
    routers: dict[str, dict[str, object]] = data["http"]["routers"]
    return routers


def start_backends(names: list[str]) -> tuple[Process, dict[str, int]]:
    popen = subprocess.Popen(
        [sys.executable, str(HERE / "backend.py"), *names], stdout=subprocess.PIPE
    )
    assert popen.stdout is not None
    line = popen.stdout.readline()
    if not line:
        popen.wait()
        raise RuntimeError("backend process exited before listening")
    return Process(popen), json.loads(line)


def dynamic_config(ports: dict[str, int]) -> dict[str, object]:
    """The routers file plus one service per router pointing at its named backend."""
    routers = load_routers()
    services = {
        name: {"loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{ports[name]}"}]}}
        for name in routers
    }
    return {"http": {"routers": routers, "services": services}}


# Both servers listen on these; the ports are chosen by the kernel and read back.
ENTRYPOINTS = {"web": {"address": "127.0.0.1:0"}, "web6": {"address": "[::1]:0"}}


def write_traefik_config(directory: Path, ports: dict[str, int]) -> Path:
    dynamic = directory / "dynamic.yml"
    dynamic.write_text(yaml.safe_dump(dynamic_config(ports)))
    static = directory / "traefik.yml"
    static.write_text(
        yaml.safe_dump(
            {
                "entryPoints": ENTRYPOINTS,
                "providers": {"file": {"filename": str(dynamic), "watch": False}},
                "log": {"level": "ERROR"},
            }
        )
    )
    return static


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def listening_ports(pid: int) -> dict[str, int]:
    """Listening TCP ports of ``pid`` by family ("v4"/"v6"), read from /proc."""
    inodes = _socket_inodes(pid)
    found: dict[str, int] = {}
    for family, table in (("v4", "/proc/net/tcp"), ("v6", "/proc/net/tcp6")):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:
                found[family] = int(fields[1].rsplit(":", 1)[1], 16)
    return found


def send(request: RawRequest, port_v4: int, port_v6: int, timeout: float = 5.0) -> str:
    """Send ``request`` from its source address; return the router name, "404" or "status N"."""
    v6 = ":" in request.source
    family = socket.AF_INET6 if v6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.bind((request.source, 0))
        sock.connect(("::1" if v6 else "127.0.0.1", port_v6 if v6 else port_v4))
        sock.sendall(request.encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head = data.partition(b"\r\n\r\n")[0].decode("latin-1")
    status = int(head.split(" ", 2)[1])
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if status == 200 and name.lower() == "x-router":
            return value.strip()
    return NOT_FOUND if status == 404 else f"status {status}"


def start_traefik(static: Path, deadline_s: float = 30.0) -> tuple[Process, int, int]:
    popen = subprocess.Popen(
        [str(TRAEFIK), f"--configFile={static}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    process = Process(popen)
    try:
        v4, v6 = _wait_ready(popen, deadline_s)
    except BaseException:
        process.stop()
        raise
    return process, v4, v6


def _wait_ready(popen: subprocess.Popen[bytes], deadline_s: float) -> tuple[int, int]:
    deadline = time.monotonic() + deadline_s
    probe = RawRequest("/", host="ready.test")
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise RuntimeError(f"traefik exited with {popen.returncode}")
        ports = listening_ports(popen.pid)
        if "v4" in ports and "v6" in ports:
            try:
                if send(probe, ports["v4"], ports["v6"], timeout=1.0) == "ready":
                    return ports["v4"], ports["v6"]
            except OSError:
                pass
        time.sleep(0.05)  # polling a condition with a deadline, not waiting for readiness
    raise TimeoutError("traefik did not route the readiness probe in time")


@dataclass(frozen=True, slots=True)
class _Candidate:
    name: str
    priority: int


class InProcessProxynow:
    """proxynow's routing decision without sockets: the compiled ``RouteTable`` fed with a
    ``RequestView`` built from the raw request exactly as the data plane will build it."""

    def __init__(self) -> None:
        routes = [
            Route(name, str(cfg["rule"]), name, int(cfg.get("priority", 0) or 0))  # type: ignore[call-overload]
            for name, cfg in load_routers().items()
        ]
        self.table: RouteTable[str] = compile_table(routes)
        self._routes = routes
        self._predicates = [compile_predicate(parse_rule(str(r.rule))) for r in routes]

    def view(self, request: RawRequest) -> SimpleRequest:
        return SimpleRequest.from_raw(
            request.target,
            host=request.host or "",
            method=request.method,
            headers=request.headers,
            client_ip=request.source,
        )

    def answer(self, request: RawRequest) -> str:
        if request.host is None or not valid_host(request.host.encode("utf-8")):
            # HTTP/1.1 without Host, or a malformed one: a 400 before any routing.
            return "status 400"
        found = self.table.match(self.view(request))
        return NOT_FOUND if found is None else found

    def top_matches(self, request: RawRequest) -> Iterator[_Candidate]:
        """Matching routes by a linear scan, best first (used to detect priority ties)."""
        view = self.view(request)
        matching = [
            _Candidate(r.name, r.effective_priority())
            for r, p in zip(self._routes, self._predicates, strict=True)
            if p(view)
        ]
        yield from sorted(matching, key=lambda c: -c.priority)
