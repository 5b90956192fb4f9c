"""A backend on 127.0.0.1 that fails before it succeeds (for retry's tests)."""

from __future__ import annotations

import hashlib
import json

from tests.support.http_server import HandlerServer, QuietHandler

__all__ = ["Flaky"]


class Flaky(HandlerServer):
    """A backend that answers 503 to the first `failures` requests of each path, then 200
    with what it received: {"n": requests of that path, "body": the body's length and
    digest}; /always answers 500."""

    def __init__(self, failures: int = 1) -> None:
        self.counts: dict[str, int] = {}
        flaky = self

        class Handler(QuietHandler):
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

        super().__init__(Handler)
