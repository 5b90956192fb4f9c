"""Client codecs for the in-memory front-end suite: requests to bytes, bytes to responses.

A codec is the client half of one HTTP version. The cases in test_front_ends.py speak only
in `Request` and `Response`; a codec turns a request into the bytes a client of its version
sends and parses what the front end wrote back. `Http1Codec` encodes HTTP/1.1 by hand (the
encoding is the test input) and parses responses with httptools, the parser the data plane
itself runs on. An HTTP/2 codec would frame the same requests as streams.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

import httptools

__all__ = ["ClientCodec", "Http1Codec", "Request", "Response"]


@dataclass
class Request:
    method: str = "GET"
    target: str = "/"
    host: str = "app.test"
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""  # sent with its length; a streamed body goes through `chunk`


@dataclass
class Response:
    status: int = 0
    headers: list[tuple[str, str]] = field(default_factory=list)  # names in lower case
    body: bytearray = field(default_factory=bytearray)
    complete: bool = False

    def header(self, name: str) -> str | None:
        """The first value of header `name` (any case), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key == wanted), None)


class ClientCodec(Protocol):
    """The client side of one HTTP version, as the cases drive it."""

    responses: list[Response]
    unexpected: bytearray  # bytes that answer no request (a HEAD body, say)
    errors: list[str]  # what could not be parsed

    def preface(self) -> bytes:
        """What a client sends first on a new connection (HTTP/2's preface; nothing here)."""
        ...

    def request(self, request: Request, streamed: bool = False) -> bytes:
        """A request with its whole body; `streamed`: the head only, the body follows in
        `chunk`s and `end` (a length the client does not know)."""
        ...

    def chunk(self, data: bytes) -> bytes: ...

    def end(self) -> bytes: ...

    def malformed(self) -> bytes:
        """A request the front end must refuse as a protocol error."""
        ...

    def refused(self) -> bool:
        """Whether the front end answered `malformed` the way its version refuses a client."""
        ...

    def feed(self, data: bytes) -> None:
        """Bytes the front end wrote to the client, in order."""
        ...

    def pending(self) -> Response | None:
        """The response being received (its head seen, not complete yet), if any."""
        ...

    def outgoing(self) -> bytes:
        """What the client must send back for what it read (HTTP/2's SETTINGS ack and
        window updates), taken once."""
        ...


class Http1Codec:
    """HTTP/1.1 over one connection; responses parsed by httptools, in request order."""

    def __init__(self) -> None:
        self.responses: list[Response] = []
        self.unexpected = bytearray()
        self.errors: list[str] = []
        self._methods: deque[str] = deque()  # of the requests not answered yet
        self._parser: httptools.HttpResponseParser | None = None
        self._current: Response | None = None
        self._head_done = False
        self._bulk = False  # inside one feed of body bytes

    # ------------------------------------------------------------------ requests

    def preface(self) -> bytes:
        return b""

    def outgoing(self) -> bytes:
        return b""  # an HTTP/1.1 client never answers what it reads

    def request(self, request: Request, streamed: bool = False) -> bytes:
        lines = [f"{request.method} {request.target} HTTP/1.1", f"Host: {request.host}"]
        lines += [f"{name}: {value}" for name, value in request.headers]
        if streamed:
            lines.append("Transfer-Encoding: chunked")
        elif request.body or request.method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(request.body)}")
        self._methods.append(request.method)
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head if streamed else head + request.body

    def chunk(self, data: bytes) -> bytes:
        return b"%x\r\n%b\r\n" % (len(data), data)

    def end(self) -> bytes:
        return b"0\r\n\r\n"

    def malformed(self) -> bytes:
        self._methods.append("GET")
        # A header line without a colon: llhttp's "invalid header token".
        return b"GET / HTTP/1.1\r\nHost: app.test\r\nNo colon here\r\n\r\n"

    def refused(self) -> bool:
        return bool(self.responses) and self.responses[-1].status == 400

    # ------------------------------------------------------------------ responses

    def feed(self, data: bytes) -> None:
        # Called from the front end's transport.write: a parse error is recorded for the
        # test to assert on, never raised into the protocol under test.
        try:
            self._feed(data)
        except (httptools.HttpParserError, AssertionError) as exc:
            self.errors.append(repr(exc))

    def _feed(self, data: bytes) -> None:
        at = 0
        while at < len(data):
            if self._parser is None:
                if not self._methods:
                    self.unexpected += data[at:]
                    return
                self._parser = httptools.HttpResponseParser(self)
            if self._head_done:
                self._bulk = True
                try:
                    self._parser.feed_data(data[at:])
                finally:
                    self._bulk = False
                return
            # The head a byte at a time: httptools does not say where a head ends, and the
            # response to a HEAD ends there whatever its Content-Length says.
            self._parser.feed_data(data[at : at + 1])
            at += 1
            if self._head_done and self._current is not None and self._methods[0] == "HEAD":
                self._finish()
                self._parser = None  # this one would wait for the body: a fresh parser

    def on_message_begin(self) -> None:
        if not self._methods:
            raise AssertionError("a response that no request asked for")
        if self._bulk and self._methods[0] == "HEAD":
            # Only pipelined answers share a write; the suite sends one request at a time.
            raise AssertionError("a HEAD response in the write of the one before it")
        self._current = Response()
        self._head_done = False

    def on_status(self, status: bytes) -> None:
        assert self._current is not None and self._parser is not None
        self._current.status = self._parser.get_status_code()

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self._current is not None
        self._current.headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self._head_done = True

    def on_body(self, body: bytes) -> None:
        assert self._current is not None
        self._current.body += body

    def on_message_complete(self) -> None:
        self._finish()

    def _finish(self) -> None:
        response = self._current
        assert response is not None
        response.complete = True
        self._current = None
        self._head_done = False
        if response.status >= 200:  # a 1xx precedes the final answer to the same request
            self.responses.append(response)
            self._methods.popleft()

    def pending(self) -> Response | None:
        """The response being received (its head seen, not complete yet), if any."""
        return self._current
