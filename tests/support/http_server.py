"""The scaffold of the tests' small HTTP/1.1 backends: a threaded `http.server` on
127.0.0.1:0 that runs a handler class, logs nothing, and stops on `close()`. Each backend
(tests/support/echo_body.py, flaky.py, typeless.py) writes only its handler."""

from __future__ import annotations

import http.server
import threading
from typing import Any

__all__ = ["HandlerServer", "QuietHandler"]


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 (keep-alive) and no line on stderr per request."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


class HandlerServer:
    """`handler` served on a free port of 127.0.0.1 (a thread per connection); `url`."""

    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler]) -> None:
        self.server = _Server(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
