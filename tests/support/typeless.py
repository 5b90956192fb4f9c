"""A backend on 127.0.0.1 that answers without Content-Type (for contentType's tests):
each path is a body of a kind the sniffing tells apart; /typed says what it is."""

from __future__ import annotations

from tests.support.http_server import HandlerServer, QuietHandler

__all__ = ["BODIES", "TypelessBackend"]

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
# path → the body sent, without Content-Type
BODIES: dict[str, bytes] = {
    "/html": b"  <!DOCTYPE html><html><body>hello</body></html>",
    "/text": b"just some words\n",
    "/json": b'{"a": 1}',
    "/xml": b"<?xml version='1.0'?><a/>",
    "/png": PNG,
    "/gzip": b"\x1f\x8b\x08\x00" + b"\x00" * 12,
    "/binary": b"\x00\x01\x02binary",
    "/empty": b"",
    "/typed": b"<html></html>",
    "/chunked": b"<HTML>\n<p>streamed</p></HTML>",
}


class TypelessBackend(HandlerServer):
    """/chunked is sent chunked (no length); /typed with Content-Type: application/json."""

    def __init__(self) -> None:
        class Handler(QuietHandler):
            def do_GET(self) -> None:
                self.answer(True)

            def do_HEAD(self) -> None:
                self.answer(False)

            def answer(self, body: bool) -> None:
                payload = BODIES.get(self.path.partition("?")[0], b"other")
                self.send_response(200)
                if self.path == "/typed":
                    self.send_header("Content-Type", "application/json")
                if self.path == "/chunked":
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    if body:
                        self.wfile.write(b"%x\r\n%b\r\n0\r\n\r\n" % (len(payload), payload))
                    return
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if body:
                    self.wfile.write(payload)

        super().__init__(Handler)
