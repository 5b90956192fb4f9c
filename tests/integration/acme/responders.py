"""Thread-based HTTP-01 and TLS-ALPN-01 answerers for testing the manager against Pebble
without the data plane: they serve whatever `ChallengeSet` was published last."""

from __future__ import annotations

import http.server
import socket
import socketserver
import ssl
import tempfile
import threading
from pathlib import Path

from proxynow.ipc.challenges import ChallengeSet

__all__ = ["Responders"]

WELL_KNOWN = "/.well-known/acme-challenge/"


class _Threaded(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


class Responders:
    """HTTP-01 on `http_port`, TLS-ALPN-01 on `tls_port` (both 127.0.0.1, port 0)."""

    def __init__(self, directory: Path) -> None:
        self.current = ChallengeSet()
        self.published: list[ChallengeSet] = []
        self._directory = directory
        responders = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                token = self.path.removeprefix(WELL_KNOWN)
                answer = responders.current.http01.get(token)
                body = (answer or "not found").encode()
                self.send_response(200 if answer and self.path.startswith(WELL_KNOWN) else 404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._http = _Threaded(("127.0.0.1", 0), Handler)
        self.http_port = self._http.server_address[1]
        self._tls = socket.create_server(("127.0.0.1", 0))
        self.tls_port = self._tls.getsockname()[1]
        self._threads = [
            threading.Thread(target=self._http.serve_forever, daemon=True),
            threading.Thread(target=self._serve_tls, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def publish(self, challenges: ChallengeSet) -> None:
        self.published.append(challenges)
        self.current = challenges

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._tls.close()

    def _context_for(self, domain: str) -> ssl.SSLContext | None:
        pair = self.current.tlsalpn01.get(domain)
        if pair is None:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.set_alpn_protocols(["acme-tls/1"])
        with tempfile.NamedTemporaryFile(dir=self._directory, suffix=".pem") as pem:
            pem.write(pair[0] + b"\n" + pair[1])
            pem.flush()
            context.load_cert_chain(pem.name)
        return context

    def _serve_tls(self) -> None:
        while True:
            try:
                conn, _ = self._tls.accept()
            except OSError:
                return
            threading.Thread(target=self._handshake, args=(conn,), daemon=True).start()

    def _handshake(self, conn: socket.socket) -> None:
        base = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        base.set_alpn_protocols(["acme-tls/1"])

        def choose(sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, _: object) -> None:
            context = self._context_for(name or "")
            if context is not None:
                sock.context = context

        base.sni_callback = choose  # type: ignore[assignment]
        try:
            with base.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)
        except (OSError, ssl.SSLError):
            conn.close()
