"""gRPC and upstream HTTP/2 through a running `proxynow run`: a real grpcio backend on
127.0.0.1 reached over h2c (`h2c://`) and over TLS (ALPN h2, a test CA), from grpcio
clients over h2c and TLS and from curl; error statuses and server streaming pass through;
a stalled or misbehaving backend never holds up a second client."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import trustme

from tests.support.grpc_backend import GrpcBackend, channel_stub
from tests.support.proc import ProxynowProcess, poll, proxynow_factory
from tests.support.tls import pem_pair

__all__ = ["proxynow_factory"]

Start = Callable[..., ProxynowProcess]


@pytest.fixture
def backend() -> Iterator[GrpcBackend]:
    with GrpcBackend() as server:
        yield server


def grpc_config(
    url: str, directory: Path | None = None, transport: dict[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """`web` (h2c and HTTP/1.1) to the service at `url`, and with `directory` a TLS
    entrypoint `websecure` for grpc.test (its CA in directory/ca.pem)."""
    service: dict[str, Any] = {"loadBalancer": {"servers": [{"url": url}]}}
    if transport is not None:
        service["loadBalancer"]["serversTransport"] = "backend"
    routers: dict[str, Any] = {
        "plain": {"rule": "PathPrefix(`/`)", "entryPoints": ["web"], "service": "grpc"}
    }
    entrypoints: dict[str, Any] = {"web": {"address": "127.0.0.1:0"}}
    http: dict[str, Any] = {"routers": routers, "services": {"grpc": service}}
    if transport is not None:
        http["serversTransports"] = {"backend": transport}
    dynamic: dict[str, Any] = {"http": http}
    if directory is not None:
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(directory / "ca.pem"))
        cert, key = pem_pair(ca.issue_cert("grpc.test"))
        routers["secure"] = {
            "rule": "Host(`grpc.test`)",
            "entryPoints": ["websecure"],
            "service": "grpc",
            "tls": {},
        }
        dynamic["tls"] = {"certificates": [{"certFile": cert, "keyFile": key}]}
        entrypoints["websecure"] = {"address": "127.0.0.1:0"}
    static = {"entryPoints": entrypoints, "log": {"level": "INFO"}}
    return static, dynamic


def plain_channel(port: int) -> grpc.Channel:
    return grpc.insecure_channel(f"127.0.0.1:{port}")


def test_unary_and_streaming_over_h2c(proxynow_factory: Start, backend: GrpcBackend) -> None:
    static, dynamic = grpc_config(f"h2c://127.0.0.1:{backend.port}")
    proxy = proxynow_factory(static, dynamic)
    with plain_channel(proxy.ports["web"]) as channel:
        unary = channel_stub(channel, "Unary")
        assert unary(b"hello", timeout=20) == b"echo:hello"
        items = list(channel_stub(channel, "Stream", streaming=True)(b"5", timeout=20))
        assert items == [b"item-%d" % i for i in range(5)]


def test_error_status_and_message_pass_through(
    proxynow_factory: Start, backend: GrpcBackend
) -> None:
    static, dynamic = grpc_config(f"h2c://127.0.0.1:{backend.port}")
    proxy = proxynow_factory(static, dynamic)
    with plain_channel(proxy.ports["web"]) as channel:
        unary = channel_stub(channel, "Unary")
        with pytest.raises(grpc.RpcError) as caught:
            unary(b"fail:NOT_FOUND:no such thing", timeout=20)
        error: Any = caught.value
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert error.details() == "no such thing"
        # The connection goes on: the next call on it succeeds.
        assert unary(b"again", timeout=20) == b"echo:again"


def tls_backend(directory: Path) -> tuple[GrpcBackend, dict[str, Any]]:
    """A grpcio server over TLS (certificate for backend.test from its own CA) and the
    serversTransport that trusts it."""
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(directory / "backend-ca.pem"))
    leaf = ca.issue_cert("backend.test")
    cert = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
    server = GrpcBackend(cert=cert, key=leaf.private_key_pem.bytes())
    transport = {"rootCAs": [str(directory / "backend-ca.pem")], "serverName": "backend.test"}
    return server, transport


def test_tls_client_to_a_tls_backend_that_negotiates_h2(
    proxynow_factory: Start, tmp_path: Path
) -> None:
    server, transport = tls_backend(tmp_path)
    with server:
        static, dynamic = grpc_config(f"https://127.0.0.1:{server.port}", tmp_path, transport)
        proxy = proxynow_factory(static, dynamic)
        credentials = grpc.ssl_channel_credentials((tmp_path / "ca.pem").read_bytes())
        options = [("grpc.ssl_target_name_override", "grpc.test")]
        target = f"127.0.0.1:{proxy.ports['websecure']}"
        with grpc.secure_channel(target, credentials, options) as channel:
            assert channel_stub(channel, "Unary")(b"tls", timeout=20) == b"echo:tls"
            items = list(channel_stub(channel, "Stream", streaming=True)(b"3", timeout=20))
            assert items == [b"item-0", b"item-1", b"item-2"]
            with pytest.raises(grpc.RpcError) as caught:
                channel_stub(channel, "Unary")(b"fail:PERMISSION_DENIED:nope", timeout=20)
            error: Any = caught.value
            assert (error.code(), error.details()) == (grpc.StatusCode.PERMISSION_DENIED, "nope")


def test_disable_http2_offers_only_http1_to_the_backend(
    proxynow_factory: Start, tmp_path: Path
) -> None:
    # grpcio speaks nothing but HTTP/2: with disableHTTP2 the handshake cannot agree on
    # http/1.1 (grpcio refuses it), so the call fails where the test above succeeds.
    server, transport = tls_backend(tmp_path)
    with server:
        transport["disableHTTP2"] = True
        static, dynamic = grpc_config(f"https://127.0.0.1:{server.port}", None, transport)
        proxy = proxynow_factory(static, dynamic)
        with plain_channel(proxy.ports["web"]) as channel:
            with pytest.raises(grpc.RpcError) as caught:
                channel_stub(channel, "Unary")(b"h1", timeout=20)
            error: Any = caught.value
            assert error.code() == grpc.StatusCode.UNAVAILABLE  # the proxy's 502
        assert server.calls == 0


def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["curl", "-sS", "--max-time", "20", *args], capture_output=True, timeout=30, check=True
    )


def grpc_frame(message: bytes) -> bytes:
    """A gRPC length-prefixed message (uncompressed)."""
    return b"\x00" + len(message).to_bytes(4, "big") + message


def test_curl_http2_and_http1_clients_get_the_grpc_trailers(
    proxynow_factory: Start, backend: GrpcBackend, tmp_path: Path
) -> None:
    static, dynamic = grpc_config(f"h2c://127.0.0.1:{backend.port}")
    proxy = proxynow_factory(static, dynamic)
    url = f"http://127.0.0.1:{proxy.ports['web']}/test.Echo/Unary"
    body = tmp_path / "request.bin"
    body.write_bytes(grpc_frame(b"curl"))
    common = ["-H", "content-type: application/grpc", "-H", "te: trailers"]
    common += ["--data-binary", f"@{body}", "-D", "-", "-o", str(tmp_path / "out.bin")]
    for version in ("--http2-prior-knowledge", "--http1.1"):
        done = curl(version, *common, url)
        head = done.stdout.decode().lower()
        assert "content-type: application/grpc" in head
        assert "grpc-status: 0" in head  # a trailer, dumped by curl after the body
        assert (tmp_path / "out.bin").read_bytes() == grpc_frame(b"echo:curl")
    assert backend.calls == 2
    # An HTTP/1.1 client gets the trailers in the last chunk, as Traefik (Go) writes them.
    raw = _http1_exchange(proxy.ports["web"], grpc_frame(b"raw"))
    assert b"transfer-encoding: chunked" in raw.lower()
    assert raw.endswith(b"\r\n0\r\ngrpc-status: 0\r\ngrpc-message: \r\n\r\n")


def _http1_exchange(port: int, body: bytes) -> bytes:
    import socket

    request = (
        b"POST /test.Echo/Unary HTTP/1.1\r\nHost: grpc.test\r\nContent-Type: application/grpc\r\n"
        b"TE: trailers\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body)
    )
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_grpc_requests_are_counted_with_protocol_grpc(
    proxynow_factory: Start, backend: GrpcBackend
) -> None:
    from tests.support.proc import http_get

    static, dynamic = grpc_config(f"h2c://127.0.0.1:{backend.port}")
    static["entryPoints"]["traefik"] = {"address": "127.0.0.1:0"}
    static["metrics"] = {"prometheus": {}}
    proxy = proxynow_factory(static, dynamic, workers=1)
    with plain_channel(proxy.ports["web"]) as channel:
        for _ in range(3):
            channel_stub(channel, "Unary")(b"m", timeout=20)
    wanted = 'proxynow_entrypoint_requests_total{code="200",entrypoint="web",method="POST",'
    wanted += 'protocol="grpc"} 3.0'

    def counted() -> bool:
        status, text = http_get(proxy.ports["traefik"], "/metrics", host="127.0.0.1")
        return status == 200 and wanted in text.decode()

    poll(counted, 20, "three gRPC requests in the metrics")


def test_a_stalled_call_does_not_hold_up_another_client(
    proxynow_factory: Start, backend: GrpcBackend
) -> None:
    static, dynamic = grpc_config(f"h2c://127.0.0.1:{backend.port}")
    proxy = proxynow_factory(static, dynamic, workers=1)
    port = proxy.ports["web"]
    with plain_channel(port) as stalled, plain_channel(port) as other:
        pending = channel_stub(stalled, "Stall").future(b"wait", timeout=30)
        assert backend.stalled.wait(20)
        # The same worker, the same upstream connection: another stream answers at once.
        assert channel_stub(other, "Unary")(b"meanwhile", timeout=10) == b"echo:meanwhile"
        assert not pending.done()
        backend.release.set()
        assert pending.result(timeout=20) == b"late"


def test_streams_past_the_backend_limit_open_another_connection(
    proxynow_factory: Start,
) -> None:
    with GrpcBackend(max_streams=2) as backend:
        static, dynamic = grpc_config(f"h2c://127.0.0.1:{backend.port}")
        proxy = proxynow_factory(static, dynamic, workers=1)
        with plain_channel(proxy.ports["web"]) as channel:
            stall = channel_stub(channel, "Stall")
            calls = [stall.future(b"wait", timeout=30) for _ in range(5)]
            # Five calls in flight at the backend at once, two streams per connection.
            poll(lambda: backend.stalls == 5, 20, "five stalled calls at the backend")
            assert len(backend.peers) >= 3
            backend.release.set()
            assert [call.result(timeout=20) for call in calls] == [b"late"] * 5


def test_an_unread_endless_stream_does_not_hold_up_another_client(
    proxynow_factory: Start, backend: GrpcBackend
) -> None:
    static, dynamic = grpc_config(f"h2c://127.0.0.1:{backend.port}")
    proxy = proxynow_factory(static, dynamic, workers=1)
    port = proxy.ports["web"]
    with plain_channel(port) as endless, plain_channel(port) as other:
        stream = channel_stub(endless, "Endless", streaming=True)(b"", timeout=60)
        assert len(next(stream)) == 16384  # flowing; the client then stops reading
        for i in range(3):
            assert channel_stub(other, "Unary")(b"%d" % i, timeout=10) == b"echo:%d" % i
        stream.cancel()
        # After the cancel the backend's stream ends too (the proxy reset it).
        poll(lambda: backend.endless_active == 0, 20, "the endless stream to end")


def _huge_header_backend(connection: Any) -> None:
    """A fake HTTP/2 backend (the fault on demand: grpcio never sends an oversized head):
    answers every request with a 64 KiB header value."""
    import h2.config
    import h2.connection
    import h2.events

    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=False, header_encoding=None)
    )
    conn.initiate_connection()
    connection.sendall(conn.data_to_send())
    while data := connection.recv(65536):
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                fields = [(b":status", b"200"), (b"x-huge", b"h" * (64 << 10))]
                conn.send_headers(event.stream_id, fields, end_stream=True)
        connection.sendall(conn.data_to_send())


def test_a_backend_sending_a_huge_head_gets_a_502_while_another_client_is_served(
    proxynow_factory: Start, backend: GrpcBackend
) -> None:
    from tests.support.proc import ThreadedServer

    with ThreadedServer(_huge_header_backend) as huge:
        static, dynamic = grpc_config(f"h2c://127.0.0.1:{backend.port}")
        http = dynamic["http"]
        http["routers"]["huge"] = {
            "rule": "PathPrefix(`/huge`)",
            "entryPoints": ["web"],
            "service": "huge",
        }
        http["services"]["huge"] = {
            "loadBalancer": {
                "servers": [{"url": f"h2c://127.0.0.1:{huge.port}"}],
                "serversTransport": "small",
            }
        }
        http["serversTransports"] = {"small": {"maxResponseHeaderBytes": 16384}}
        proxy = proxynow_factory(static, dynamic, workers=1)
        port = proxy.ports["web"]
        with plain_channel(port) as channel:
            for _ in range(2):
                url = f"http://127.0.0.1:{port}/huge"
                done = curl("--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_code}", url)
                assert done.stdout == b"502"
                assert channel_stub(channel, "Unary")(b"fine", timeout=10) == b"echo:fine"
