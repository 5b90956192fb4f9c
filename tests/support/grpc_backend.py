"""A real gRPC server (grpcio) on 127.0.0.1 for the upstream HTTP/2 tests: no protoc, the
methods are generic handlers over raw bytes.

`test.Echo/Unary` answers its request; a request `fail:<code>:<message>` is answered with
that status instead (grpc-status / grpc-message in the trailers). `test.Echo/Stream` sends
`n` messages for a request `n` (server streaming); `test.Echo/Endless` sends until the
client goes; `test.Echo/Stall` answers only once `release` is set.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc

__all__ = ["GrpcBackend", "channel_stub"]

SERVICE = "test.Echo"


def _raw(data: bytes) -> bytes:
    return data


class GrpcBackend:
    """grpcio on an ephemeral port; plain (h2c) or TLS with `cert`/`key` PEM bytes."""

    def __init__(
        self, cert: bytes | None = None, key: bytes | None = None, max_streams: int = 0
    ) -> None:
        self.release = threading.Event()
        self.stalled = threading.Event()
        self.stalls = 0  # Stall calls in progress
        self.endless_active = 0
        self.peers: set[str] = set()  # the client connections (address:port) calls came on
        self.lock = threading.Lock()
        self.calls = 0
        self.metadata: list[tuple[tuple[str, Any], ...]] = []
        handlers = {
            "Unary": grpc.unary_unary_rpc_method_handler(self._unary, _raw, _raw),
            "Stream": grpc.unary_stream_rpc_method_handler(self._stream, _raw, _raw),
            "Endless": grpc.unary_stream_rpc_method_handler(self._endless, _raw, _raw),
            "Stall": grpc.unary_unary_rpc_method_handler(self._stall, _raw, _raw),
        }
        generic = grpc.method_handlers_generic_handler(SERVICE, handlers)
        options = [("grpc.max_concurrent_streams", max_streams)] if max_streams else []
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=options)
        self.server.add_generic_rpc_handlers((generic,))
        if cert is not None and key is not None:
            credentials = grpc.ssl_server_credentials([(key, cert)])
            self.port = self.server.add_secure_port("127.0.0.1:0", credentials)
        else:
            self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def _unary(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self.calls += 1
        self.metadata.append(tuple(context.invocation_metadata()))
        if request.startswith(b"fail:"):
            _, code, message = request.decode().split(":", 2)
            context.abort(grpc.StatusCode[code], message)
        return b"echo:" + request

    def _stream(self, request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        self.calls += 1
        for i in range(int(request)):
            yield b"item-%d" % i

    def _endless(self, request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        chunk = b"x" * 16384
        with self.lock:
            self.endless_active += 1
        try:
            while context.is_active():
                yield chunk
        finally:
            with self.lock:
                self.endless_active -= 1

    def _stall(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        with self.lock:
            self.stalls += 1
            self.peers.add(context.peer())
        self.stalled.set()
        self.release.wait(60)
        return b"late"

    def close(self) -> None:
        self.release.set()
        self.server.stop(grace=None).wait(10)

    def __enter__(self) -> GrpcBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def channel_stub(channel: grpc.Channel, method: str, streaming: bool = False) -> Any:
    """A callable for `test.Echo/<method>` on `channel` (raw bytes both ways)."""
    path = f"/{SERVICE}/{method}"
    if streaming:
        return channel.unary_stream(path, request_serializer=_raw, response_deserializer=_raw)
    return channel.unary_unary(path, request_serializer=_raw, response_deserializer=_raw)
