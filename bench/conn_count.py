"""Instructions per new connection through the accept path, without sockets.

What bench/hotpath_count.py is for a keep-alive request, this is for the conn-close and
tls-handshake scenarios: per connection the entrypoint's real protocol factory
(edge/runtime/accept.py `connection_factory`), `connection_made`, one `Connection: close`
request, the pooled backend's answer, the close and `connection_lost`, through in-memory
transports. With `--tls` the entrypoint serves HTTPS (the bench's ECDSA P-256 certificate
as the default one, the worker's shared ticket key set) and a real client `SSLObject` in
the same process talks to it: `--tls` alone offers the ticket of the connection before
(a resumed handshake, as wrk does: bench/conn_cpu.py), `--tls --full` a new session each
time.

    PYTHONHASHSEED=0 PYTHONPATH=. valgrind --tool=callgrind --collect-atstart=no \\
        --toggle-collect=functools_reduce --callgrind-out-file=/tmp/cg.out \\
        python bench/conn_count.py 300 [--tls [--full]]
    callgrind_annotate /tmp/cg.out | head   # the server side's instructions; / 300

Only the server's steps run inside `functools.reduce` calls, so callgrind counts them
alone: the client's TLS work (and start-up, warm-up) is left out. OpenSSL's share is in
the count: compare `callgrind_annotate --inclusive=yes` for SSL_do_handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import ssl
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.configs import write_certificate  # noqa: E402
from proxynow.config.dynamic import DynamicConfig  # noqa: E402
from proxynow.config.static import StaticConfig  # noqa: E402
from proxynow.edge.graph.resources import GraphResources  # noqa: E402
from proxynow.edge.graph.state import WorkerState  # noqa: E402
from proxynow.edge.runtime.accept import connection_factory  # noqa: E402
from proxynow.edge.runtime.worker import worker_metrics  # noqa: E402
from proxynow.edge.upstream.connection import UpstreamConnection  # noqa: E402
from proxynow.snapshot import Snapshot  # noqa: E402

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8443\r\nConnection: close\r\n\r\n"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, World!"
WARM = 100


class MemoryTransport:
    """Enough of a uvloop TCP transport for the accept path; keeps what is written."""

    def __init__(self, peer: tuple[str, int]) -> None:
        self.peer = peer
        self.out: list[bytes] = []
        self.writes = 0
        self.closing = False
        self.protocol: Any = None

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self.peer
        if name == "sockname":
            return ("127.0.0.1", 8443)
        return default

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.out.append(bytes(data))

    def take(self) -> bytes:
        data = b"".join(self.out)
        self.out.clear()
        return data

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    abort = close

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def get_protocol(self) -> Any:
        return self.protocol

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None: ...
    def can_write_eof(self) -> bool:
        return False


def _config(tls: bool, certificate: tuple[Path, Path]) -> DynamicConfig:
    service = {"loadBalancer": {"servers": [{"url": "http://127.0.0.1:9"}]}}
    router: dict[str, Any] = {"rule": "PathPrefix(`/`)", "service": "s@bench"}
    config: dict[str, Any] = {
        "http": {"routers": {"r@bench": router}, "services": {"s@bench": service}}
    }
    if tls:
        router["tls"] = {}
        cert, key = certificate
        default = {"certFile": str(cert), "keyFile": str(key)}
        config["tls"] = {"stores": {"default": {"defaultCertificate": default}}}
    return DynamicConfig.model_validate(config)


def _measured(step: Callable[[], None]) -> None:
    """Run `step` inside one C call that callgrind's --toggle-collect can count."""
    functools.reduce(lambda _, f: f(), (step,), None)


class Bench:
    def __init__(self, tls: bool, full: bool, directory: Path) -> None:
        static = StaticConfig.model_validate({"entryPoints": {"web": {"address": ":8443"}}})
        self.state = WorkerState(
            tick_interval=1.0, resources=GraphResources(metrics=worker_metrics(static))
        )
        snapshot = Snapshot(version=1, config=_config(tls, write_certificate(directory)))
        self.state.resources.contexts.set_ticket_key(os.urandom(80))
        self.state.load(snapshot, static)
        self.factory = connection_factory(self.state, "web", static.entry_points["web"])
        (pool,) = self.state.resources.pools.pools.values()
        self.pool = pool
        self.upstream = UpstreamConnection(pool)
        self.upstream_transport = MemoryTransport(("127.0.0.1", 9))
        self.upstream.connection_made(self.upstream_transport)  # type: ignore[arg-type]
        pool.release(self.upstream, 0.0)
        self.tls = tls
        self.full = full
        self.client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.client_context.check_hostname = False
        self.client_context.verify_mode = ssl.CERT_NONE
        self.session: ssl.SSLSession | None = None
        self.resumed = 0
        self.writes = 0

    def one(self, measure: Callable[[Callable[[], None]], None]) -> None:
        transport = MemoryTransport(("127.0.0.1", 40000))

        def accept() -> None:
            protocol = self.factory()
            transport.protocol = protocol
            protocol.connection_made(transport)

        measure(accept)
        if self.tls:
            self._tls_exchange(transport, measure)
        else:
            measure(lambda: transport.protocol.data_received(REQUEST))
            self._answer(transport, measure)
        assert transport.closing
        measure(lambda: transport.protocol.connection_lost(None))
        self.writes += transport.writes

    def _answer(self, transport: MemoryTransport, measure: Callable[..., None]) -> None:
        sent = self.upstream_transport.take()
        assert sent.startswith(b"GET / HTTP/1.1"), sent[:60]
        measure(lambda: self.upstream.data_received(RESPONSE))

    def _tls_exchange(self, transport: MemoryTransport, measure: Callable[..., None]) -> None:
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        session = None if self.full else self.session
        client = self.client_context.wrap_bio(
            incoming, outgoing, server_hostname="bench.test", session=session
        )
        _step(client.do_handshake)
        hello = outgoing.read()
        measure(lambda: transport.protocol.data_received(hello))
        incoming.write(transport.take())
        client.do_handshake()
        client.write(REQUEST)
        finished = outgoing.read()
        measure(lambda: transport.protocol.data_received(finished))
        self._answer(transport, measure)
        incoming.write(transport.take())
        answer = b""
        while True:
            try:
                chunk = client.read(65536)
            except (ssl.SSLZeroReturnError, ssl.SSLWantReadError):
                break
            if not chunk:
                break
            answer += chunk
        assert answer.endswith(b"Hello, World!"), answer
        self.resumed += client.session_reused
        self.session = client.session


def _step(call: Callable[[], Any]) -> None:
    with contextlib.suppress(ssl.SSLWantReadError):
        call()


async def run(count: int, tls: bool, full: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="proxynow-conn-count-") as tmp:
        bench = Bench(tls, full, Path(tmp))
        for _ in range(WARM):
            bench.one(lambda step: step())
        bench.resumed = bench.writes = 0
        for _ in range(count):
            bench.one(_measured)
        kind = ("full" if full else "resumed") + " TLS" if tls else "plain"
        print(
            f"{count} measured {kind} connections (and {WARM} before them); "
            f"resumed {bench.resumed}, {bench.writes / count:.1f} writes to the client each"
        )


def main() -> None:
    args = sys.argv[1:]
    tls = "--tls" in args
    full = "--full" in args
    numbers = [a for a in args if a.isdigit()]
    count = int(numbers[0]) if numbers else 300
    asyncio.run(run(count, tls, full))


if __name__ == "__main__":
    main()
