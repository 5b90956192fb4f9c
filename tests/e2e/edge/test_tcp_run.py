"""TCP routers end to end: a real `proxynow run` (2 workers) between real sockets.

One proxy serves the whole module; each scenario has its own entrypoint. Backends are
thread servers on 127.0.0.1 / ::1; clients are blocking sockets.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import select
import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.proc import ProxynowProcess, ThreadedServer, poll, start_proxynow

SIG = b"\r\n\r\n\x00\r\nQUIT\n"
MIB = 1024 * 1024


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def echo(conn: socket.socket) -> None:
    """Echo until the client's EOF, then close (half-close is passed on by the proxy)."""
    while data := conn.recv(65536):
        conn.sendall(data)
    conn.close()


class Recorder:
    """Reads a whole connection, then closes it; the bytes go to `received`."""

    def __init__(self) -> None:
        self.received: queue.Queue[bytes] = queue.Queue()

    def __call__(self, conn: socket.socket) -> None:
        self.received.put(read_all(conn))
        conn.close()


class Stubborn:
    """After the client's EOF: says "ack", keeps its side open until released, then says
    "late" and closes. Until `release` is set, only the proxy can end the connection."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def __call__(self, conn: socket.socket) -> None:
        read_all(conn)
        with contextlib.suppress(OSError):
            conn.sendall(b"ack")
        self.release.wait(60)
        with contextlib.suppress(OSError):
            conn.sendall(b"late")
        conn.close()


@pytest.fixture(scope="module")
def backends() -> Iterator[dict[str, Any]]:
    recorder = Recorder()
    stubborn_cut = Stubborn()
    stubborn_kept = Stubborn()
    servers = {
        "echo": ThreadedServer(echo),
        "recorder": ThreadedServer(recorder),
        "stubborn_cut": ThreadedServer(stubborn_cut),
        "stubborn_kept": ThreadedServer(stubborn_kept),
    }
    yield {
        "servers": servers,
        "recorder": recorder,
        "stubborn_cut": stubborn_cut,
        "stubborn_kept": stubborn_kept,
    }
    stubborn_cut.release.set()
    stubborn_kept.release.set()
    for server in servers.values():
        server.close()


@pytest.fixture(scope="module")
def proxy(
    tmp_path_factory: pytest.TempPathFactory, backends: dict[str, Any]
) -> Iterator[ProxynowProcess]:
    servers = backends["servers"]
    entrypoints = [
        *("echo", "big", "pp1", "pp2", "pp2v6", "deny", "allow", "cut", "kept"),
        *("counted", "refused"),
    ]
    static = {
        "entryPoints": {name: {"address": "127.0.0.1:0"} for name in entrypoints},
        "log": {"level": "ERROR"},
    }
    static["entryPoints"]["pp2v6"] = {"address": "[::1]:0"}

    def lb(server: str, **options: Any) -> dict[str, Any]:
        return {"loadBalancer": {"servers": [{"address": servers[server].address}], **options}}

    def router(entrypoints: list[str], service: str, rule: str = "HostSNI(`*`)") -> Any:
        return {"entryPoints": entrypoints, "rule": rule, "service": service}

    dynamic = {
        "tcp": {
            "routers": {
                "echo": router(["echo"], "echo"),
                "big": router(["big"], "forever-echo"),
                "pp1": router(["pp1"], "pp1"),
                "pp2": router(["pp2", "pp2v6"], "pp2"),
                "deny": router(["deny"], "echo", "ClientIP(`10.0.0.0/8`)"),
                "allow": router(["allow"], "echo", "HostSNI(`*`) && ClientIP(`127.0.0.1/32`)"),
                "cut": router(["cut"], "cut"),
                "kept": router(["kept"], "kept"),
                "counted": router(["counted"], "counted"),
                "refused": router(["refused"], "refused"),
            },
            "services": {
                "echo": lb("echo"),
                "forever-echo": lb("echo", terminationDelay=-1),
                # The deprecated per-service field and the serversTransport way.
                "pp1": lb("recorder", proxyProtocol={"version": 1}),
                "pp2": lb("recorder", serversTransport="pp2"),
                "cut": lb("stubborn_cut", terminationDelay="50ms"),
                "kept": lb("stubborn_kept", terminationDelay=-1),
                "counted": lb("echo"),
            },
            "serversTransports": {"pp2": {"proxyProtocol": {"version": 2}}},
        }
    }
    with socket.socket() as unused:  # bound, never listening: connections are refused
        unused.bind(("127.0.0.1", 0))
        free = unused.getsockname()[1]
        dynamic["tcp"]["services"]["refused"] = {
            "loadBalancer": {"servers": [{"address": f"127.0.0.1:{free}"}]}
        }
        proxy = start_proxynow(tmp_path_factory.mktemp("tcp"), static, dynamic)
    yield proxy
    assert proxy.stop() == 0


def connect(proxy: ProxynowProcess, entrypoint: str, host: str = "127.0.0.1") -> socket.socket:
    sock = socket.create_connection((host, proxy.ports[entrypoint]), timeout=20)
    return sock


def test_echo_through_tcp_router_with_half_close(proxy: ProxynowProcess) -> None:
    with connect(proxy, "echo") as sock:
        sock.sendall(b"hello, ")
        sock.sendall(b"world")
        # Our EOF reaches the backend, whose close then reaches us: all data, then EOF.
        sock.shutdown(socket.SHUT_WR)
        assert read_all(sock) == b"hello, world"


def test_large_transfer_both_ways_intact(proxy: ProxynowProcess) -> None:
    payload = os.urandom(MIB) * 64
    with connect(proxy, "big") as sock:
        sender = threading.Thread(target=lambda: (sock.sendall(payload), sock.shutdown(1)))
        sender.start()
        received = read_all(sock)
        sender.join()
    assert len(received) == len(payload)
    assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()


def test_backpressure_a_client_that_does_not_read_stops_the_flow(
    proxy: ProxynowProcess,
) -> None:
    """The client only writes; the echoed bytes pile up. With backpressure every buffer
    on the path fills and our writes stop; without it the proxy would swallow all 512 MiB
    into memory. Kernel socket buffers on the path hold some tens of MiB at most."""
    chunk = b"x" * MIB
    sent = 0
    with connect(proxy, "big") as sock:
        sock.setblocking(False)
        while sent < 512 * MIB:
            _, writable, _ = select.select([], [sock], [], 2.0)
            if not writable:
                break  # the flow has stopped
            try:
                sent += sock.send(chunk)
            except BlockingIOError:
                continue
        assert sent < 256 * MIB, f"{sent // MIB} MiB accepted by a proxy whose client never reads"
        # Reading again lets everything through, in order.
        sock.setblocking(True)
        sock.shutdown(socket.SHUT_WR)
        received = 0
        while data := sock.recv(MIB):
            assert data == b"x" * len(data)
            received += len(data)
    assert received == sent


def expected_v1(client: socket.socket) -> bytes:
    src_ip, src_port = client.getsockname()[:2]
    dst_ip, dst_port = client.getpeername()[:2]
    return f"PROXY TCP4 {src_ip} {dst_ip} {src_port} {dst_port}\r\n".encode()


def expected_v2(client: socket.socket) -> bytes:
    family = socket.AF_INET6 if client.family == socket.AF_INET6 else socket.AF_INET
    src_ip, src_port = client.getsockname()[:2]
    dst_ip, dst_port = client.getpeername()[:2]
    addresses = socket.inet_pton(family, src_ip) + socket.inet_pton(family, dst_ip)
    addresses += struct.pack("!HH", src_port, dst_port)
    family_byte = 0x21 if family == socket.AF_INET6 else 0x11
    return SIG + bytes([0x21, family_byte]) + struct.pack("!H", len(addresses)) + addresses


@pytest.mark.parametrize(
    ("entrypoint", "host", "expected"),
    [
        ("pp1", "127.0.0.1", expected_v1),
        ("pp2", "127.0.0.1", expected_v2),
        ("pp2v6", "::1", expected_v2),
    ],
)
def test_proxy_protocol_header_as_the_backend_receives_it(
    proxy: ProxynowProcess, backends: dict[str, Any], entrypoint: str, host: str, expected: Any
) -> None:
    recorder: Recorder = backends["recorder"]
    with connect(proxy, entrypoint, host) as sock:
        header = expected(sock)
        sock.sendall(b"payload")
        sock.shutdown(socket.SHUT_WR)
        assert read_all(sock) == b""
    assert recorder.received.get(timeout=20) == header + b"payload"


def test_client_ip_rule_that_does_not_match_falls_through_to_http(
    proxy: ProxynowProcess,
) -> None:
    with connect(proxy, "deny") as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n")
        response = read_all(sock)
    assert response.startswith(b"HTTP/1.1 404 ")


def test_client_ip_rule_that_matches_routes_to_tcp(proxy: ProxynowProcess) -> None:
    with connect(proxy, "allow") as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        assert read_all(sock) == b"GET / HTTP/1.1\r\n\r\n"


def test_termination_delay_closes_a_backend_that_never_finishes(
    proxy: ProxynowProcess, backends: dict[str, Any]
) -> None:
    stubborn: Stubborn = backends["stubborn_cut"]
    with connect(proxy, "cut") as sock:
        sock.shutdown(socket.SHUT_WR)
        # The backend answers, then holds its side open: the EOF we read can only come
        # from the proxy closing both sides 50ms after our EOF (on a busy machine that can
        # happen before the "ack" got through).
        assert read_all(sock) in (b"ack", b"")
        assert not stubborn.release.is_set()


def test_negative_termination_delay_keeps_the_other_direction_open(
    proxy: ProxynowProcess, backends: dict[str, Any]
) -> None:
    stubborn: Stubborn = backends["stubborn_kept"]
    with connect(proxy, "kept") as sock:
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(3) == b"ack"
        stubborn.release.set()
        assert read_all(sock) == b"late"


def tcp_totals(proxy: ProxynowProcess, section: str, name: str) -> dict[str, int]:
    """One TCP router's (or service's) counters, added over the workers."""
    total: dict[str, int] = {}
    for worker in proxy.metrics():
        view = worker["metrics"].get("tcp", {}).get(section, {}).get(name, {})
        for key, value in view.items():
            total[key] = total.get(key, 0) + value
    return total


def entrypoint_gauge(proxy: ProxynowProcess, entrypoint: str) -> int:
    return sum(
        w["metrics"]["entrypoints"].get(entrypoint, {}).get("tcp_open_connections", 0)
        for w in proxy.metrics()
    )


def test_tcp_metrics_count_connections_and_bytes(proxy: ProxynowProcess) -> None:
    with connect(proxy, "counted") as sock:
        sock.sendall(b"12345")
        assert sock.recv(5) == b"12345"
        poll(lambda: tcp_totals(proxy, "routers", "counted@file").get("open_connections") == 1)
        assert entrypoint_gauge(proxy, "counted") == 1
        sock.shutdown(socket.SHUT_WR)
        assert read_all(sock) == b""
    poll(lambda: tcp_totals(proxy, "routers", "counted@file").get("open_connections") == 0)
    router = tcp_totals(proxy, "routers", "counted@file")
    assert router == {
        "connections": 1,
        "open_connections": 0,
        "failed": 0,
        "bytes_in": 5,
        "bytes_out": 5,
    }
    assert tcp_totals(proxy, "services", "counted@file") == router
    assert entrypoint_gauge(proxy, "counted") == 0


def test_tcp_metrics_count_a_backend_that_refuses(proxy: ProxynowProcess) -> None:
    with connect(proxy, "refused") as sock:
        assert read_all(sock) == b""  # the proxy closes when the dial fails
    poll(lambda: tcp_totals(proxy, "routers", "refused@file").get("failed") == 1)
    assert tcp_totals(proxy, "routers", "refused@file")["open_connections"] == 0
