"""A backend on 127.0.0.1 that says what request body it got: its length, digest and the
framing headers it came with (for buffering's tests)."""

from __future__ import annotations

import hashlib
import json

from tests.support.http_server import HandlerServer, QuietHandler

__all__ = ["EchoBody", "digest"]


def digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:16]


class EchoBody(HandlerServer):
    """Answers 200 {"length", "digest", "cl", "te"}; `seen` lists the paths asked,
    `digests` the digest of the body each got."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.digests: dict[str, str] = {}
        echo = self

        class Handler(QuietHandler):
            def answer(self) -> None:
                echo.seen.append(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = hashlib.sha256()
                got = 0
                while got < length:
                    piece = self.rfile.read(min(length - got, 1 << 20))
                    if not piece:
                        break
                    body.update(piece)
                    got += len(piece)
                echo.digests[self.path] = body.hexdigest()[:16]
                out = json.dumps(
                    {
                        "length": got,
                        "digest": body.hexdigest()[:16],
                        "cl": self.headers.get("Content-Length"),
                        "te": self.headers.get("Transfer-Encoding"),
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = answer

        super().__init__(Handler)
