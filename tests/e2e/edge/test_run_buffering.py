"""`buffering` end to end from a file: a request body is read whole (in memory, then in a
temporary file) before a real backend gets it, with a Content-Length; 413 past
maxRequestBodyBytes; a slow upload reaches the backend only once whole, while other
clients are served meanwhile."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import struct
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.echo_body import EchoBody, digest
from tests.support.flaky import Flaky
from tests.support.proc import ProxynowProcess, poll, proxynow_factory

__all__ = ["proxynow_factory"]  # the fixture, re-exported for pytest

Start = Callable[..., ProxynowProcess]
LIMIT = 8 << 20
TEMP = tempfile.gettempdir()


@pytest.fixture
def backend() -> Iterator[EchoBody]:
    served = EchoBody()
    yield served
    served.close()


def config(backend: EchoBody) -> tuple[dict[str, Any], dict[str, Any]]:
    static = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}}
    options = {"maxRequestBodyBytes": LIMIT, "memRequestBodyBytes": 64 << 10}
    dynamic = {
        "http": {
            "middlewares": {"buffer": {"buffering": options}},
            "routers": {
                "b": {"rule": "Host(`b.test`)", "service": "s", "middlewares": ["buffer"]},
                "p": {"rule": "Host(`p.test`)", "service": "s"},
            },
            "services": {"s": {"loadBalancer": {"servers": [{"url": backend.url}]}}},
        }
    }
    return static, dynamic


def send(port: int, host: str, path: str, body: Any = None, chunked: bool = False) -> Any:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(
            "POST" if body is not None else "GET",
            path,
            body=body,
            headers={"Host": host},
            encode_chunked=chunked,
        )
        response = connection.getresponse()
        data = response.read()
        return response.status, json.loads(data) if response.status == 200 else data
    finally:
        connection.close()


def test_bodies_are_read_whole_and_sent_with_a_length(
    proxynow_factory: Start, backend: EchoBody
) -> None:
    port = proxynow_factory(*config(backend), workers=1).ports["web"]
    small = b"s" * 1000
    assert send(port, "b.test", "/small", small) == (
        200,
        {"length": 1000, "digest": digest(small), "cl": "1000", "te": None},
    )
    spilled = bytes(range(256)) * (5 << 12)  # 5 MiB: past the 64 KiB kept in memory
    status, answer = send(port, "b.test", "/spilled", spilled)
    assert (status, answer["length"], answer["digest"]) == (200, len(spilled), digest(spilled))
    pieces = [b"c" * 100_000] * 30  # chunked, 3 MB: the backend gets a Content-Length
    status, answer = send(port, "b.test", "/chunked", iter(pieces), chunked=True)
    whole = b"".join(pieces)
    assert (status, answer) == (
        200,
        {"length": len(whole), "digest": digest(whole), "cl": str(len(whole)), "te": None},
    )
    assert send(port, "b.test", "/get")[0] == 200


def test_bodies_past_the_limit_get_413(proxynow_factory: Start, backend: EchoBody) -> None:
    port = proxynow_factory(*config(backend), workers=1).ports["web"]
    head = b"POST /declared HTTP/1.1\r\nHost: b.test\r\nContent-Length: %d\r\n" % (LIMIT + 1)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(head + b"Expect: 100-continue\r\n\r\n")
        assert conn.recv(65536).startswith(b"HTTP/1.1 413 ")  # at once: no body was sent
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(head + b"\r\n" + b"x" * (LIMIT + 1))  # read off, then answered
        assert conn.recv(65536).startswith(b"HTTP/1.1 413 ")
    big = [b"x" * (1 << 20)] * 9
    status, body = send(port, "b.test", "/chunked-big", iter(big), chunked=True)
    assert (status, body) == (413, b"Request Entity Too Large")
    assert "/declared" not in backend.seen and "/chunked-big" not in backend.seen
    assert send(port, "p.test", "/unbuffered", b"y" * (LIMIT + 1))[0] == 200  # no middleware


def test_a_slow_upload_reaches_the_backend_whole_and_blocks_nobody(
    proxynow_factory: Start, backend: EchoBody
) -> None:
    port = proxynow_factory(*config(backend), workers=1).ports["web"]
    body = b"0123456789" * 20_000  # 200 KB: past memory, in the file
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(
            b"PUT /slow HTTP/1.1\r\nHost: b.test\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        for index in range(0, len(body) - 50_000, 50_000):
            conn.sendall(body[index : index + 50_000])
            assert send(port, "b.test", f"/meanwhile{index}", b"m")[0] == 200
            assert "/slow" not in backend.seen  # no backend waits on the slow client
        conn.sendall(body[-50_000:])
        reply = b""
        while b"}" not in reply:
            piece = conn.recv(65536)
            assert piece, reply
            reply += piece
    answer = json.loads(reply.partition(b"\r\n\r\n")[2])
    assert (answer["length"], answer["digest"]) == (len(body), digest(body))


def spilled_files(pids: list[int]) -> int:
    """The temporary body files the workers hold open (unlinked: seen through /proc)."""
    count = 0
    for pid in pids:
        fds = Path(f"/proc/{pid}/fd")
        for fd in fds.iterdir():
            with contextlib.suppress(OSError):
                link = os.readlink(fd)  # O_TMPFILE: "/tmp/#<inode> (deleted)", no name
                count += link.startswith(TEMP) and link.endswith("(deleted)")
    return count


def test_uploads_cut_midway_leave_no_file_and_others_are_served(
    proxynow_factory: Start, backend: EchoBody
) -> None:
    proxy = proxynow_factory(*config(backend), workers=1)
    port = proxy.ports["web"]
    cut = []
    for index in range(5):  # concurrent uploads, each past memory, none finished
        conn = socket.create_connection(("127.0.0.1", port), timeout=10)
        conn.sendall(
            b"PUT /cut%d HTTP/1.1\r\nHost: b.test\r\nContent-Length: %d\r\n\r\n" % (index, LIMIT)
        )
        conn.sendall(b"c" * (1 << 20))
        cut.append(conn)
    poll(lambda: spilled_files(proxy.worker_pids()) == 5, 10, "five spilled bodies")
    assert send(port, "b.test", "/meanwhile", b"m")[0] == 200
    for conn in cut:  # aborted (a reset): a half-close waits for the rest until readTimeout
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
    poll(lambda: spilled_files(proxy.worker_pids()) == 0, 10, "the files closed")
    assert not any(path.startswith("/cut") for path in backend.seen)


def test_over_http2_the_body_is_streamed(
    proxynow_factory: Start, backend: EchoBody, tmp_path: Path
) -> None:
    port = proxynow_factory(*config(backend), workers=1).ports["web"]
    body = tmp_path / "body"
    body.write_bytes(b"h" * 100_000)
    found = subprocess.run(
        [
            "curl",
            "-s",
            "--http2-prior-knowledge",
            "-H",
            "Host: b.test",
            "--data-binary",
            f"@{body}",
            "-w",
            " %{http_code} %{http_version}",
            f"http://127.0.0.1:{port}/h2",
        ],
        capture_output=True,
        check=True,
        timeout=30,
        text=True,
    ).stdout
    answer, status, version = found.rsplit(" ", 2)
    assert (status, version) == ("200", "2")
    assert json.loads(answer)["digest"] == digest(b"h" * 100_000)


def test_retry_expression_sends_a_buffered_body_again(proxynow_factory: Start) -> None:
    flaky = Flaky()
    try:
        static = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}}
        options = {"memRequestBodyBytes": 1000, "retryExpression": "ResponseCode() == 503"}
        dynamic = {
            "http": {
                "middlewares": {"again": {"buffering": options}},
                "routers": {
                    "b": {"rule": "Host(`b.test`)", "service": "s", "middlewares": ["again"]}
                },
                "services": {"s": {"loadBalancer": {"servers": [{"url": flaky.url}]}}},
            }
        }
        port = proxynow_factory(static, dynamic, workers=1).ports["web"]
        body = bytes(range(256)) * 800  # 200 KB: from the file, twice
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("PUT", "/put", body=body, headers={"Host": "b.test"})
        response = connection.getresponse()
        assert (response.status, json.loads(response.read())) == (
            200,
            {"n": 2, "body": digest(body)},
        )
        connection.close()
        # Without a body the request is sent once, as Traefik sends it.
        assert send(port, "b.test", "/get")[0] == 503
    finally:
        flaky.close()


def test_a_mirror_gets_the_whole_buffered_body(proxynow_factory: Start, backend: EchoBody) -> None:
    mirror = EchoBody()
    try:
        static = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}}
        dynamic = {
            "http": {
                "middlewares": {"buffer": {"buffering": {"memRequestBodyBytes": 1000}}},
                "routers": {
                    "b": {"rule": "Host(`b.test`)", "service": "m", "middlewares": ["buffer"]}
                },
                "services": {
                    "main": {"loadBalancer": {"servers": [{"url": backend.url}]}},
                    "copy": {"loadBalancer": {"servers": [{"url": mirror.url}]}},
                    "m": {
                        "mirroring": {
                            "service": "main",
                            "mirrors": [{"name": "copy", "percent": 100}],
                        }
                    },
                },
            }
        }
        port = proxynow_factory(static, dynamic, workers=1).ports["web"]
        body = b"mirrored " * 30_000  # 270 KB: most of it pumped from the file
        assert send(port, "b.test", "/m", body)[1]["digest"] == digest(body)
        poll(lambda: "/m" in mirror.digests, 10, "the mirror's copy")
        assert mirror.digests["/m"] == digest(body)
    finally:
        mirror.close()
