"""CPU per new connection, under a light fixed-count load: TLS handshakes and plain TCP.

    PYTHONPATH=$PWD .venv/bin/python bench/conn_cpu.py [--proxies proxynow,traefik,nginx]
        [--modes full,resumed,plain] [--count 2000] [--proxy-cpu 0] [--client-cpu 1]

Each proxy in turn runs on one core (one proxynow worker, GOMAXPROCS=1, one nginx worker)
on the bench's files (bench/configs.py: the same ECDSA P-256 certificate for all three),
in front of the bench's nginx backend. One client on the other core opens `--count`
connections one after the other, each with one `Connection: close` request for the 13 B
body, and the proxy's CPU time (its whole process tree, from /proc) before and after is
divided by the count:

- `full`: a new TLS session per connection (a full handshake: key exchange, certificate,
  signature);
- `resumed`: each connection offers the ticket of the one before (what wrk does: it
  keeps its SSL object and calls SSL_clear between connections), so the server decrypts
  a ticket and issues a new one instead of signing;
- `plain`: HTTP, a new TCP connection per request (the conn-close scenario).

CPU per operation is far less sensitive to neighbours than a rate, so this runs on a
shared machine; it is not a throughput benchmark. The client's offer is the machine's
OpenSSL defaults (X25519 key share, TLS 1.3), as wrk's is.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import ssl
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import procs  # noqa: E402
from bench.configs import (  # noqa: E402
    SMALL_BODY,
    Setup,
    write_backend,
    write_nginx_proxy,
    write_traefik_files,
)
from bench.proxies import launch  # noqa: E402

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
WARMUP = 200
MODES = ("full", "resumed", "plain")


def _client_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _read_all(sock: socket.socket | ssl.SSLSocket) -> bytes:
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError, ConnectionResetError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


class Client:
    """One connection at a time, one request each; counts answers without the body."""

    def __init__(self, port: int, mode: str) -> None:
        self.port = port
        self.mode = mode
        self.context = _client_context()
        self.session: ssl.SSLSession | None = None
        self.resumed = 0
        self.failed = 0

    def one(self) -> None:
        raw = socket.create_connection(("127.0.0.1", self.port))
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock: socket.socket | ssl.SSLSocket = raw
        if self.mode != "plain":
            session = self.session if self.mode == "resumed" else None
            sock = self.context.wrap_socket(raw, server_hostname="127.0.0.1", session=session)
        try:
            sock.sendall(REQUEST)
            answer = _read_all(sock)
            if not answer.endswith(SMALL_BODY):
                self.failed += 1
            if isinstance(sock, ssl.SSLSocket):
                self.resumed += sock.session_reused
                self.session = sock.session
        finally:
            sock.close()

    def run(self, count: int) -> None:
        for _ in range(count):
            self.one()


def tree_run_seconds(root: int) -> float:
    """CPU seconds run so far by every thread of the tree of `root` (schedstat: in
    nanoseconds, where /proc/<pid>/stat counts 10 ms ticks)."""
    total = 0
    for pid in procs.tree_pids(root):
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/schedstat") as handle:
                    total += int(handle.read().split()[0])
    return total / 1e9


def measure(pid: int, action: Callable[[], None]) -> tuple[float, float]:
    """(CPU seconds of the tree of `pid`, wall seconds) spent while `action` runs."""
    before, start = tree_run_seconds(pid), time.monotonic()
    action()
    return tree_run_seconds(pid) - before, time.monotonic() - start


def run_proxy(
    proxy: str, modes: list[str], count: int, workdir: Path, ports: tuple[int, int], cpu: str
) -> None:
    port, backend_port = ports
    directory = workdir / proxy
    setup = Setup(tls=True)
    files = write_traefik_files(directory, port, backend_port, setup)
    conf = write_nginx_proxy(directory, port, backend_port, setup)
    plain_files = write_traefik_files(directory / "plain", port, backend_port, Setup())
    plain_conf = write_nginx_proxy(directory / "plain", port, backend_port, Setup())
    for mode in modes:
        tls = mode != "plain"
        command = launch(proxy, files if tls else plain_files, conf if tls else plain_conf, 1)
        server = procs.start(proxy, command.argv, cpu, directory / f"{mode}.log", command.env)
        try:
            client = Client(port, mode)
            procs.wait_until(partial(_answers, client), 30.0, f"{proxy} to serve", server)
            client.run(WARMUP)
            client.resumed = client.failed = 0
            cpu_s, wall = measure(server.pid, partial(client.run, count))
            print(
                f"{proxy:9} {mode:8} {count} connections: {cpu_s / count * 1e6:7.1f} us CPU each "
                f"(wall {wall:.1f} s, resumed {client.resumed}, failed {client.failed})",
                flush=True,
            )
        finally:
            procs.stop(server)


def _answers(client: Client) -> bool:
    """One good answer (a proxy may answer 404 until its routers are loaded)."""
    client.failed = 0
    try:
        client.one()
    except OSError:
        return False
    return client.failed == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--proxies", default="proxynow,traefik,nginx")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--proxy-cpu", default="0")
    parser.add_argument("--client-cpu", default="1")
    args = parser.parse_args()
    os.sched_setaffinity(0, {int(c) for c in args.client_cpu.split(",")})
    with tempfile.TemporaryDirectory(prefix="proxynow-conn-cpu-") as tmp:
        workdir = Path(tmp)
        port, backend_port = procs.free_ports(2)
        backend_conf = write_backend(workdir, backend_port, workers=1)
        backend = procs.start(
            "backend",
            ["nginx", "-c", str(backend_conf), "-e", str(workdir / "backend-error.log")],
            args.client_cpu,
            workdir / "backend.log",
        )
        try:
            procs.wait_until(
                lambda: procs.answers(backend_port, "/", SMALL_BODY), 30.0, "backend", backend
            )
            for proxy in args.proxies.split(","):
                run_proxy(
                    proxy,
                    args.modes.split(","),
                    args.count,
                    workdir,
                    (port, backend_port),
                    args.proxy_cpu,
                )
        finally:
            procs.stop(backend)


if __name__ == "__main__":
    main()
