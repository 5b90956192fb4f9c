"""`buffering` of responses end to end: a backend's body is read whole (memory, then a
temporary file) before the client gets it, with a Content-Length; past
maxResponseBodyBytes the client gets 500 and the backend connection is dropped (an endless
body too); a client that goes midway leaves no file and no backend connection; a second
client is served meanwhile; over HTTP/2 too; the same answers as Traefik 3.7."""

from __future__ import annotations

import gzip
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.edge.test_run_buffering import spilled_files
from tests.support.proc import ProxynowProcess, ThreadedServer, poll, proxynow_factory
from tests.support.traefik import TraefikProcess, traefik_factory

__all__ = ["proxynow_factory", "traefik_factory"]

Start = Callable[..., ProxynowProcess]
LIMIT = 100_000
MEMORY = 1000


class Backend:
    """Raw HTTP/1.1 answers by path: `/claim` a head saying 2 GiB (no body), `/cl/<n>` n
    bytes with a Content-Length, `/ch/<n>` n bytes in chunks of 997 with a pause before the
    last, `/endless` chunks until the connection goes, `/early` its head before it reads the
    request's body, then the body's length, `/stall/<n>` n bytes then nothing
    until the proxy closes the connection."""

    def __init__(self) -> None:
        self.ended: list[str] = []  # the paths whose connection the proxy dropped or ended
        self.server = ThreadedServer(self.handle)
        self.url = f"http://{self.server.address}"

    def handle(self, conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            piece = conn.recv(65536)
            if not piece:
                return
            data += piece
        path = data.split(b" ")[1].decode()
        try:
            self._answer(conn, path, data)
        except OSError:
            pass
        finally:
            self.ended.append(path)
            conn.close()

    def _answer(self, conn: socket.socket, path: str, data: bytes) -> None:
        kind, _, size = path[1:].partition("/")
        body = bytes(i % 251 for i in range(int(size or 0)))
        if kind == "claim":  # a head saying 2 GiB, and no body
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (2 << 30))
            conn.settimeout(60)
            if conn.recv(1) == b"":
                self.ended.append("dropped " + path)
            return
        if kind == "early":  # the head first, the body once the request's is read whole
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            length = int(data.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            left = length - len(data.partition(b"\r\n\r\n")[2])
            while left > 0:
                piece = conn.recv(65536)
                if not piece:
                    return
                left -= len(piece)
            conn.sendall(b"%x\r\nread %d\r\n0\r\n\r\n" % (len(b"read %d" % length), length))
            return
        if kind == "cl":
            head = b"HTTP/1.1 200 OK\r\nX-B: 1\r\nContent-Length: %d\r\n\r\n" % len(body)
            conn.sendall(head + body)
            return
        conn.sendall(b"HTTP/1.1 201 Created\r\nX-B: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
        if kind == "endless":
            while True:
                conn.sendall(b"4000\r\n" + b"e" * 0x4000 + b"\r\n")
        if kind == "stall":
            conn.sendall(b"%x\r\n%b\r\n" % (len(body), body))
            conn.settimeout(60)
            if conn.recv(1) == b"":  # nothing more is sent: only the proxy's close ends this
                self.ended.append("dropped " + path)
            return
        pieces = [body[i : i + 997] for i in range(0, len(body), 997)]
        for piece in pieces[:-1]:
            conn.sendall(b"%x\r\n%b\r\n" % (len(piece), piece))
        time.sleep(0.2)  # a slow backend: the proxy's answer waits for its end
        if pieces:
            conn.sendall(b"%x\r\n%b\r\n" % (len(pieces[-1]), pieces[-1]))
        conn.sendall(b"0\r\n\r\n")

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def backend() -> Iterator[Backend]:
    served = Backend()
    yield served
    served.close()


def config(backend: Backend) -> tuple[dict[str, Any], dict[str, Any]]:
    static = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}}
    options = {"maxResponseBodyBytes": LIMIT, "memResponseBodyBytes": MEMORY}
    dynamic = {
        "http": {
            "middlewares": {
                "buffer": {"buffering": options},
                "unset": {"buffering": {"memResponseBodyBytes": 1 << 20}},
            },
            "routers": {
                "b": {"rule": "Host(`b.test`)", "service": "s", "middlewares": ["buffer"]},
                "u": {"rule": "Host(`u.test`)", "service": "s", "middlewares": ["unset"]},
            },
            "services": {"s": {"loadBalancer": {"servers": [{"url": backend.url}]}}},
        }
    }
    return static, dynamic


def get(port: int, path: str, host: bytes = b"b.test") -> tuple[int, dict[bytes, bytes], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        request = b"GET %b HTTP/1.1\r\nHost: %b\r\nConnection: close\r\n\r\n"
        sock.sendall(request % (path.encode(), host))
        raw = b"".join(iter(lambda: sock.recv(65536), b""))
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def expected(size: int) -> bytes:
    return bytes(i % 251 for i in range(size))


def test_responses_are_read_whole_and_sent_with_a_length(
    proxynow_factory: Start, backend: Backend
) -> None:
    port = proxynow_factory(*config(backend)).ports["web"]
    for path, status, size in (
        ("/cl/500", 200, 500),  # in memory
        ("/cl/50000", 200, 50000),  # spilled to the file
        ("/ch/800", 201, 800),  # chunked from the backend: a Content-Length to the client
        ("/ch/99999", 201, 99999),
        ("/cl/100000", 200, 100000),  # the limit itself passes
    ):
        got, headers, body = get(port, path)
        assert (got, headers.get(b"content-length"), body) == (status, b"%d" % size, expected(size))
        assert headers[b"x-b"] == b"1" and b"transfer-encoding" not in headers


def test_past_the_limit_the_client_gets_500_and_the_backend_is_dropped(
    proxynow_factory: Start, backend: Backend
) -> None:
    proxy = proxynow_factory(*config(backend), workers=1)
    port = proxy.ports["web"]
    for path in ("/cl/100001", "/ch/150000", "/endless"):
        status, headers, body = get(port, path)
        assert (status, body) == (500, b"Internal Server Error")
        assert b"content-type" not in headers  # Traefik's: no Content-Type
    poll(lambda: "/endless" in backend.ended, 10, "the endless backend dropped")
    # No limit set: 1 GiB bounds it all the same (Traefik would read 2 GiB to disk).
    assert get(port, "/claim", b"u.test")[::2] == (500, b"Internal Server Error")
    poll(lambda: "dropped /claim" in backend.ended, 10, "the claiming backend dropped")
    assert spilled_files(proxy.worker_pids()) == 0


def test_a_client_gone_midway_leaves_no_file_nor_backend_and_others_are_served(
    proxynow_factory: Start, backend: Backend
) -> None:
    proxy = proxynow_factory(*config(backend), workers=1)
    port = proxy.ports["web"]
    waiting = []
    for index in range(3):  # stalled backends, each past memory: a file each
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(b"GET /stall/%d HTTP/1.1\r\nHost: b.test\r\n\r\n" % (5000 + index))
        waiting.append(sock)
    poll(lambda: spilled_files(proxy.worker_pids()) == 3, 10, "three spilled responses")
    assert get(port, "/cl/700")[2] == expected(700)  # served meanwhile
    for sock in waiting:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    poll(lambda: spilled_files(proxy.worker_pids()) == 0, 10, "the files closed")

    # The stalled backends' connections were dropped, not read to their end.
    def dropped() -> bool:
        return sum(p.startswith("dropped /stall") for p in backend.ended) == 3

    poll(dropped, 10, "the backends dropped")


def test_a_buffered_response_over_http2(
    proxynow_factory: Start, backend: Backend, tmp_path: Path
) -> None:
    port = proxynow_factory(*config(backend)).ports["web"]
    for path, status in (("/ch/20000", "201"), ("/cl/100001", "500")):
        out = tmp_path / "out"
        command = ["curl", "-sS", "--http2-prior-knowledge", "-H", "Host: b.test", "-o", str(out)]
        command += ["-w", "%{http_code} %{http_version}", f"http://127.0.0.1:{port}{path}"]
        done = subprocess.run(
            command,
            capture_output=True,
            timeout=30,
            check=True,
        )
        assert done.stdout.decode() == f"{status} 2"
        if status == "201":
            assert out.read_bytes() == expected(20000)


def test_response_buffering_matches_traefik(
    proxynow_factory: Start, traefik_factory: Callable[..., TraefikProcess], backend: Backend
) -> None:
    static, dynamic = config(backend)
    ours = proxynow_factory(static, dynamic).ports["web"]
    theirs = traefik_factory(static, dynamic).ports["web"]
    for path in ("/cl/500", "/cl/50000", "/ch/800", "/cl/100001", "/ch/150000"):
        mine, reference = get(ours, path), get(theirs, path)
        keep = (b"content-length", b"content-type", b"x-b", b"transfer-encoding")
        assert (mine[0], {k: v for k, v in mine[1].items() if k in keep}, mine[2]) == (
            reference[0],
            {k: v for k, v in reference[1].items() if k in keep},
            reference[2],
        ), path


def test_middlewares_around_buffering_apply_once(proxynow_factory: Start, backend: Backend) -> None:
    """compress inside buffering: its output is buffered (and counted); outside: it
    compresses the buffered response; headers outside: its header on the replayed head."""
    static, dynamic = config(backend)
    http = dynamic["http"]
    http["middlewares"]["gz"] = {"compress": {"minResponseBodyBytes": 1}}
    http["middlewares"]["mark"] = {"headers": {"customResponseHeaders": {"X-Mark": "m"}}}
    for name, chain in (("inner", ["mark", "buffer", "gz"]), ("outer", ["gz", "mark", "buffer"])):
        rule = f"Host(`{name}.test`)"
        http["routers"][name] = {"rule": rule, "service": "s", "middlewares": chain}
    port = proxynow_factory(static, dynamic).ports["web"]
    for name in ("inner", "outer"):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(
                b"GET /ch/30000 HTTP/1.1\r\nHost: %b.test\r\nAccept-Encoding: gzip\r\n"
                b"Connection: close\r\n\r\n" % name.encode()
            )
            raw = b"".join(iter(lambda: sock.recv(65536), b""))
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = {
            line.partition(b":")[0].lower(): line.partition(b":")[2].strip()
            for line in head.split(b"\r\n")[1:]
        }
        assert lines[b"content-encoding"] == b"gzip" and lines[b"x-mark"] == b"m", name
        if name == "inner":  # buffered compressed: sent with its length
            assert lines[b"content-length"] == b"%d" % len(body)
        else:  # compressed as it goes out: chunked
            body = _dechunked(body)
        assert gzip.decompress(body) == expected(30000), name


def _dechunked(data: bytes) -> bytes:
    out = b""
    while True:
        size, _, data = data.partition(b"\r\n")
        length = int(size, 16)
        if not length:
            return out
        out, data = out + data[:length], data[length + 2 :]


def test_a_backend_that_answers_before_the_request_body_gets_it_all(
    proxynow_factory: Start, backend: Backend, tmp_path: Path
) -> None:
    """Over HTTP/2 the request body is streamed (HTTP/1.1's is read whole first): what
    comes after the backend's answer head still reaches it while its body is buffered."""
    port = proxynow_factory(*config(backend)).ports["web"]
    body = tmp_path / "body"
    body.write_bytes(b"u" * (3 << 20))
    out = tmp_path / "out"
    command = ["curl", "-sS", "--http2-prior-knowledge", "-H", "Host: b.test", "-o", str(out)]
    command += ["--data-binary", f"@{body}", f"http://127.0.0.1:{port}/early"]
    subprocess.run(command, capture_output=True, timeout=30, check=True)
    assert out.read_bytes() == b"read %d" % (3 << 20)
