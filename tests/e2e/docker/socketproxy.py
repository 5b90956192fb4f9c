"""A unix-socket forwarder to the Docker socket that a test can cut and restore.

It stands in for "the daemon went away": `cut()` closes the listening socket, removes
its path and closes every forwarded connection (so a blocked events stream ends at once,
as when dockerd stops); `restore()` listens again on the same path.
"""

from __future__ import annotations

import contextlib
import os
import socket
import socketserver
import threading

DOCKER_SOCKET = "/var/run/docker.sock"


class SocketProxy:
    def __init__(self, path: str, target: str = DOCKER_SOCKET) -> None:
        self.path = path
        self.target = target
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._server: socketserver.ThreadingUnixStreamServer | None = None
        self.restore()

    @property
    def endpoint(self) -> str:
        return f"unix://{self.path}"

    def restore(self) -> None:
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._forward(self.request)

        class Server(socketserver.ThreadingUnixStreamServer):
            daemon_threads = True

        server = Server(self.path, Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._server = server

    def cut(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._open.clear()

    def _forward(self, client: socket.socket) -> None:
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        upstream.connect(self.target)
        with self._lock:
            self._open.update((client, upstream))
        pump = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
        pump.start()
        _pump(client, upstream)
        pump.join()
        upstream.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)
