"""A backend on 127.0.0.1 that fails before it succeeds (for retry's tests)."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from typing import Any

__all__ = ["Flaky"]


class Flaky:
    """A backend that answers 503 to the first `failures` requests of each path, then 200
    with what it received: {"n": requests of that path, "body": the body's length and
    digest}; /always answers 500."""

    def __init__(self, failures: int = 1) -> None:
        self.counts: dict[str, int] = {}
        flaky = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = hashlib.sha256()
                while length:
                    piece = self.rfile.read(min(length, 1 << 20))
                    body.update(piece)
                    length -= len(piece)
                seen = flaky.counts[self.path] = flaky.counts.get(self.path, 0) + 1
                status = 503 if seen <= failures else 200
                if "/always" in self.path:
                    status = 500
                out = json.dumps({"n": seen, "body": body.hexdigest()[:16]}).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
