"""gRPC status pass-through, proxynow against real Traefik on the same files: each proxy
relays a grpcio backend's (h2c://) answers, an error's code and message, and a streamed
call's messages identically, to a gRPC client and to an HTTP/1.1 client (trailers in the
last chunk)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest

from tests.e2e.edge.test_grpc_run import grpc_config, grpc_frame
from tests.support.grpc_backend import GrpcBackend, channel_stub
from tests.support.proc import ProxynowProcess, proxynow_factory
from tests.support.traefik import TraefikProcess, traefik_factory

__all__ = ["proxynow_factory", "traefik_factory"]


@pytest.fixture
def backend() -> Iterator[GrpcBackend]:
    with GrpcBackend() as server:
        yield server


def _outcomes(port: int) -> list[Any]:
    seen: list[Any] = []
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        unary = channel_stub(channel, "Unary")
        seen.append(unary(b"ok", timeout=20))
        for request in (b"fail:NOT_FOUND:gone", b"fail:INVALID_ARGUMENT:bad \xc3\xa9"):
            try:
                unary(request, timeout=20)
            except grpc.RpcError as exc:
                error: Any = exc
                seen.append((error.code(), error.details()))
        seen.append(list(channel_stub(channel, "Stream", streaming=True)(b"4", timeout=20)))
    return seen


def _http1_trailers(port: int) -> list[bytes]:
    """The trailer fields an HTTP/1.1 client gets for a failing call (names lowercased)."""
    body = grpc_frame(b"fail:UNAVAILABLE:later")
    request = (
        b"POST /test.Echo/Unary HTTP/1.1\r\nHost: grpc.test\r\nContent-Type: application/grpc\r\n"
        b"TE: trailers\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body)
    )
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(request)
        raw = b"".join(iter(lambda: sock.recv(65536), b""))
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = [line.lower() for line in head.split(b"\r\n")[1:]]
    # A trailers-only answer: the status is in the head, as each proxy relays it.
    return [*sorted(line for line in lines if line.startswith(b"grpc-")), rest[-7:]]


def test_grpc_statuses_match_traefik(
    proxynow_factory: Callable[..., ProxynowProcess],
    traefik_factory: Callable[..., TraefikProcess],
    backend: GrpcBackend,
) -> None:
    static, dynamic = grpc_config(f"h2c://127.0.0.1:{backend.port}")
    ours = proxynow_factory(static, dynamic)
    theirs = traefik_factory(static, dynamic)
    expected = _outcomes(theirs.ports["web"])
    assert expected[1] == (grpc.StatusCode.NOT_FOUND, "gone")  # the reference works
    assert _outcomes(ours.ports["web"]) == expected
    mine, reference = _http1_trailers(ours.ports["web"]), _http1_trailers(theirs.ports["web"])
    assert b"grpc-status: 14" in mine
    assert mine == reference
