"""The grpcWeb middleware through a running `proxynow run`: a gRPC-Web client written here
(the frame format is 1 flag byte, 4 length bytes, the message) talks HTTP/1.1 to the
proxy, which talks gRPC over h2c to a real grpcio backend on 127.0.0.1. Binary and text
(base64) formats, unary and server-streaming calls, an error status, the CORS preflight;
then the same requests to real Traefik on the same files, answers compared."""

from __future__ import annotations

import base64
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.grpc_backend import GrpcBackend
from tests.support.proc import ProxynowProcess, proxynow_factory
from tests.support.traefik import TraefikProcess, traefik_factory

__all__ = ["proxynow_factory", "traefik_factory"]

ORIGIN = b"https://app.test"


@pytest.fixture
def backend() -> Iterator[GrpcBackend]:
    with GrpcBackend() as server:
        yield server


def web_config(backend: GrpcBackend) -> tuple[dict[str, Any], dict[str, Any]]:
    static = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}}
    dynamic = {
        "http": {
            "routers": {"r": {"rule": "PathPrefix(`/`)", "service": "grpc", "middlewares": ["gw"]}},
            "middlewares": {"gw": {"grpcWeb": {"allowOrigins": [ORIGIN.decode()]}}},
            "services": {
                "grpc": {"loadBalancer": {"servers": [{"url": f"h2c://127.0.0.1:{backend.port}"}]}}
            },
        }
    }
    return static, dynamic


def frame(message: bytes, flag: int = 0) -> bytes:
    return bytes([flag]) + len(message).to_bytes(4, "big") + message


def exchange(port: int, request: bytes) -> tuple[int, dict[bytes, list[bytes]], bytes]:
    """One request on its own connection: status, headers (lower-case names), the body
    de-chunked."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(request)
        raw = b"".join(iter(lambda: sock.recv(65536), b""))
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers: dict[bytes, list[bytes]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    if headers.get(b"transfer-encoding") == [b"chunked"]:
        rest = _dechunk(rest)
    return int(lines[0].split()[1]), headers, rest


def _dechunk(data: bytes) -> bytes:
    body = b""
    while True:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return body
        body, data = body + data[:size], data[size + 2 :]


def web_call(
    port: int,
    method: str,
    message: bytes,
    text: bool = False,
    origin: bytes = ORIGIN,
    chunked: bool = False,
) -> tuple[int, dict[bytes, list[bytes]], bytes]:
    kind = b"application/grpc-web-text" if text else b"application/grpc-web+proto"
    body = frame(message)
    if text:
        body = base64.b64encode(body)
    # TE: trailers, which a browser cannot send: Traefik drops TE otherwise and a grpcio
    # backend refuses the call (the differential test needs Traefik to work).
    head = (
        b"POST /test.Echo/%b HTTP/1.1\r\nHost: web.test\r\nContent-Type: %b\r\n"
        b"X-Grpc-Web: 1\r\nTE: trailers\r\nOrigin: %b\r\nConnection: close\r\n"
        % (method.encode(), kind, origin)
    )
    if chunked:  # the body in pieces that split base64 quanta
        pieces = [body[i : i + 5] for i in range(0, len(body), 5)]
        data = b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
        return exchange(port, head + b"Transfer-Encoding: chunked\r\n\r\n" + data)
    return exchange(port, head + b"Content-Length: %d\r\n\r\n%b" % (len(body), body))


def messages(body: bytes, text: bool) -> tuple[list[bytes], dict[bytes, bytes]]:
    """The messages and the trailers of a gRPC-Web response body."""
    if text:
        body = _b64_parts(body)
    found: list[bytes] = []
    trailers: dict[bytes, bytes] = {}
    while body:
        flag, size = body[0], int.from_bytes(body[1:5], "big")
        payload, body = body[5 : 5 + size], body[5 + size :]
        if flag & 0x80:
            for line in payload.split(b"\r\n"):
                if line:
                    name, _, value = line.partition(b":")
                    trailers[name] = value.strip()
        else:
            found.append(payload)
    return found, trailers


def _b64_parts(data: bytes) -> bytes:
    """Padded base64 parts one after the other, as gRPC-Web text allows."""
    out = b""
    while data:
        end = data.find(b"=")
        if end < 0:
            return out + base64.b64decode(data)
        while end < len(data) and data[end : end + 1] == b"=":
            end += 1
        out, data = out + base64.b64decode(data[:end]), data[end:]
    return out


def preflight(port: int, origin: bytes) -> tuple[int, dict[bytes, list[bytes]], bytes]:
    return exchange(
        port,
        b"OPTIONS /test.Echo/Unary HTTP/1.1\r\nHost: web.test\r\nOrigin: %b\r\n"
        b"Access-Control-Request-Method: POST\r\n"
        b"Access-Control-Request-Headers: x-grpc-web,content-type,x-user-agent\r\n"
        b"Connection: close\r\n\r\n" % origin,
    )


def test_grpc_web_calls_reach_a_grpc_backend(
    proxynow_factory: Callable[..., ProxynowProcess], backend: GrpcBackend
) -> None:
    port = proxynow_factory(*web_config(backend)).ports["web"]
    for text in (False, True):
        status, headers, body = web_call(port, "Unary", b"hello", text=text)
        assert status == 200
        kind = b"application/grpc-web-text" if text else b"application/grpc-web"
        assert headers[b"content-type"] == [kind]
        assert headers[b"access-control-allow-origin"] == [ORIGIN]
        assert headers[b"access-control-allow-credentials"] == [b"true"]
        assert b"Origin" in headers[b"vary"]
        exposed = headers[b"access-control-expose-headers"][0]
        assert exposed.endswith(b"grpc-status, grpc-message")
        assert b"Content-Type" in exposed.split(b", ")
        found, trailers = messages(body, text)
        assert found == [b"echo:hello"]
        assert trailers[b"grpc-status"] == b"0"
        # Streamed: each message as it comes, then the trailer frame.
        status, headers, body = web_call(port, "Stream", b"3", text=text)
        assert messages(body, text) == ([b"item-0", b"item-1", b"item-2"], trailers)
    # The backend got gRPC, its content type with the suffix kept.
    assert backend.calls == 4


def test_an_error_status_and_a_text_body_in_pieces(
    proxynow_factory: Callable[..., ProxynowProcess], backend: GrpcBackend
) -> None:
    port = proxynow_factory(*web_config(backend)).ports["web"]
    status, headers, body = web_call(port, "Unary", b"fail:NOT_FOUND:gone")
    # A trailers-only answer: the status in the head, an empty trailer frame in the body.
    assert status == 200
    assert headers[b"grpc-status"] == [b"5"] and headers[b"grpc-message"] == [b"gone"]
    assert body == frame(b"", 0x80)
    status, _, body = web_call(port, "Unary", b"x" * 1000, text=True, chunked=True)
    assert messages(body, True)[0] == [b"echo:" + b"x" * 1000]
    # Invalid base64: the body ends there, the backend answers what it got (an error).
    bad = (
        b"POST /test.Echo/Unary HTTP/1.1\r\nHost: w\r\nContent-Type: application/grpc-web-text\r\n"
    )
    bad += b"Connection: close\r\nContent-Length: 8\r\n\r\nAAAA!!!!"
    status, headers, body = exchange(port, bad)
    assert status == 200
    _, trailers = messages(body, True)
    assert trailers.get(b"grpc-status", headers.get(b"grpc-status", [b"0"])[0]) != b"0"


def test_the_preflight_is_answered_without_the_backend(
    proxynow_factory: Callable[..., ProxynowProcess], backend: GrpcBackend
) -> None:
    port = proxynow_factory(*web_config(backend)).ports["web"]
    status, headers, body = preflight(port, ORIGIN)
    assert status == 200 and body == b""
    assert headers[b"access-control-allow-origin"] == [ORIGIN]
    assert headers[b"access-control-allow-headers"] == [b"X-Grpc-Web, Content-Type, X-User-Agent"]
    assert headers[b"access-control-allow-methods"] == [b"POST"]
    assert headers[b"access-control-max-age"] == [b"600"]
    status, headers, _ = preflight(port, b"https://elsewhere.test")
    assert status == 200 and b"access-control-allow-origin" not in headers
    status, headers, body = web_call(port, "Unary", b"hi", origin=b"https://elsewhere.test")
    assert status == 200 and b"access-control-allow-origin" not in headers
    assert backend.calls == 1  # the preflights never reached it


def test_an_endless_stream_does_not_hold_up_another_client(
    proxynow_factory: Callable[..., ProxynowProcess], backend: GrpcBackend
) -> None:
    port = proxynow_factory(*web_config(backend)).ports["web"]
    body = frame(b"go")
    request = (
        b"POST /test.Echo/Endless HTTP/1.1\r\nHost: w\r\nContent-Type: application/grpc-web\r\n"
        b"Content-Length: %d\r\n\r\n%b" % (len(body), body)
    )
    with socket.create_connection(("127.0.0.1", port), timeout=20) as endless:
        endless.sendall(request)
        assert endless.recv(65536).startswith(b"HTTP/1.1 200")  # it flows, not read further
        done = threading.Event()
        result: list[Any] = []

        def other() -> None:
            result.append(web_call(port, "Unary", b"meanwhile", text=True))
            done.set()

        threading.Thread(target=other, daemon=True).start()
        assert done.wait(20)
        assert messages(result[0][2], True)[0] == [b"echo:meanwhile"]


def _comparable(answer: tuple[int, dict[bytes, list[bytes]], bytes], text: bool) -> Any:
    status, headers, body = answer
    kept = {
        name: values
        for name, values in headers.items()
        if name.startswith((b"access-control-", b"content-type", b"grpc-", b"vary"))
    }
    exposed = kept.pop(b"access-control-expose-headers", [b""])[0]
    return status, kept, set(exposed.split(b", ")), messages(body, text)


def test_grpc_web_answers_match_traefik(
    proxynow_factory: Callable[..., ProxynowProcess],
    traefik_factory: Callable[..., TraefikProcess],
    backend: GrpcBackend,
) -> None:
    static, dynamic = web_config(backend)
    ours = proxynow_factory(static, dynamic).ports["web"]
    theirs = traefik_factory(static, dynamic).ports["web"]
    calls = [
        ("Unary", b"hello", False),
        ("Unary", b"hello", True),
        ("Stream", b"3", False),
        ("Stream", b"2", True),
        ("Unary", b"fail:NOT_FOUND:gone", False),
        ("Unary", b"fail:INVALID_ARGUMENT:bad", True),
    ]
    for method, message, text in calls:
        reference = _comparable(web_call(theirs, method, message, text), text)
        assert reference[0] == 200  # the reference works
        assert _comparable(web_call(ours, method, message, text), text) == reference
    for origin in (ORIGIN, b"https://elsewhere.test"):
        reference = _comparable(preflight(theirs, origin), False)
        assert _comparable(preflight(ours, origin), False) == reference


def test_grpc_web_over_http2_from_curl(
    proxynow_factory: Callable[..., ProxynowProcess], backend: GrpcBackend, tmp_path: Path
) -> None:
    """A browser may speak HTTP/2 to the proxy: the same conversions on an h2c stream."""
    port = proxynow_factory(*web_config(backend)).ports["web"]
    for text, method, message, expected in (
        (False, "Unary", b"h2", [b"echo:h2"]),
        (True, "Unary", b"h2" * 300, [b"echo:" + b"h2" * 300]),
        (True, "Stream", b"2", [b"item-0", b"item-1"]),
    ):
        body = frame(message)
        (tmp_path / "request").write_bytes(base64.b64encode(body) if text else body)
        kind = "application/grpc-web-text" if text else "application/grpc-web"
        url = f"http://127.0.0.1:{port}/test.Echo/{method}"
        command = ["curl", "-sS", "--http2-prior-knowledge", "-H", f"content-type: {kind}"]
        command += ["-H", "x-grpc-web: 1", "--data-binary", f"@{tmp_path / 'request'}"]
        command += ["-D", "-", "-o", str(tmp_path / "out"), url]
        done = subprocess.run(
            command,
            capture_output=True,
            timeout=30,
            check=True,
        )
        head = done.stdout.decode().lower()
        assert head.startswith("http/2 200")
        assert f"content-type: {kind}\r\n" in head
        found, trailers = messages((tmp_path / "out").read_bytes(), text)
        assert (found, trailers[b"grpc-status"]) == (expected, b"0")
