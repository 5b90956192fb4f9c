"""Named backends for the differential test: one process, one listening port per name.

Usage: ``python backend.py NAME...``. Binds 127.0.0.1:0 once per name, prints one JSON line
``{"name": port, ...}`` when all listen, then answers every HTTP request on the port of
NAME with status 200, header ``X-Router: NAME`` and body NAME (HEAD
responses lose the body on the way back), until stopped by SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys


class _NamedHandler(asyncio.Protocol):
    """Answers each request head with the backend name; keep-alive is honoured."""

    def __init__(self, name: bytes) -> None:
        self.response = (
            b"HTTP/1.1 200 OK\r\nX-Router: "
            + name
            + b"\r\nContent-Type: text/plain\r\nContent-Length: "
            + str(len(name)).encode()
            + b"\r\n\r\n"
            + name
        )
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        # Requests from the proxies under test carry no body (GET-like methods only).
        self.buffer += data
        while b"\r\n\r\n" in self.buffer and self.transport is not None:
            _, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
            self.transport.write(self.response)


async def _serve(names: list[str]) -> None:
    loop = asyncio.get_running_loop()
    ports: dict[str, int] = {}
    servers = []
    for name in names:
        encoded = name.encode()
        server = await loop.create_server(
            lambda encoded=encoded: _NamedHandler(encoded), "127.0.0.1", 0
        )
        servers.append(server)
        ports[name] = server.sockets[0].getsockname()[1]
    print(json.dumps(ports), flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1:]))
