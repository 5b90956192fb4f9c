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

__all__ = ["ClientCodec", "Http1Codec", "Http2Codec", "Request", "Response"]


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


class Http2Codec:
    """HTTP/2 over one connection, with the `h2` library as the client: each request is a
    stream; bodies are sent as the server's windows allow, and every DATA frame read is
    given back to the window at once (a client that reads)."""

    def __init__(self) -> None:
        import h2.config
        import h2.connection

        self.responses: list[Response] = []
        self.unexpected = bytearray()
        self.errors: list[str] = []
        self.goaway: int | None = None  # the error code of a GOAWAY read
        self.resets: dict[int, int] = {}  # stream id → RST_STREAM error code
        # Outbound headers unchecked: a case may send what a client must not.
        config = h2.config.H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
        self.conn = h2.connection.H2Connection(config)
        self.conn.initiate_connection()
        # Taken now: what the client answers the server's SETTINGS must follow it.
        self._preface = self.conn.data_to_send()
        self._next = 1
        self._open: dict[int, Response] = {}  # streams whose response is not complete
        self._unsent: dict[int, bytearray] = {}  # body bytes the server's window refused
        self._ending: set[int] = set()  # streams to end once their body is out
        self._streaming = 0  # the stream `chunk` and `end` send on
        self.acks = True  # False: a client that reads but gives no window back
        self._owed: dict[int, int] = {}  # stream id → bytes read and not given back

    # ------------------------------------------------------------------ requests

    def preface(self) -> bytes:
        return self._preface

    def outgoing(self) -> bytes:
        self._pump()
        return self.conn.data_to_send()

    def request(self, request: Request, streamed: bool = False) -> bytes:
        stream_id = self._next
        self._next += 2
        fields = [
            (b":method", request.method.encode()),
            (b":scheme", b"http"),
            (b":authority", request.host.encode()),
            (b":path", request.target.encode()),
        ]
        fields += [(name.lower().encode(), value.encode()) for name, value in request.headers]
        if not streamed and (request.body or request.method in ("POST", "PUT", "PATCH")):
            fields.append((b"content-length", b"%d" % len(request.body)))
        ends = not streamed and not request.body
        self.conn.send_headers(stream_id, fields, end_stream=ends)
        self._open[stream_id] = Response()
        if streamed:
            self._streaming = stream_id
        elif request.body:
            self._unsent[stream_id] = bytearray(request.body)
            self._ending.add(stream_id)
        self._pump()
        return self.conn.data_to_send()

    def chunk(self, data: bytes) -> bytes:
        self._unsent.setdefault(self._streaming, bytearray()).extend(data)
        self._pump()
        return self.conn.data_to_send()

    def end(self) -> bytes:
        self._unsent.setdefault(self._streaming, bytearray())
        self._ending.add(self._streaming)
        self._pump()
        return self.conn.data_to_send()

    def malformed(self) -> bytes:
        # A PING on a stream: a connection error of type PROTOCOL_ERROR (RFC 9113 §6.7).
        return b"\x00\x00\x08\x06\x00\x00\x00\x00\x01" + b"\x00" * 8

    def refused(self) -> bool:
        return self.goaway is not None and self.goaway != 0

    def _pump(self) -> None:
        """Send what waits, as far as the server's windows let it."""
        conn = self.conn
        for stream_id in list(self._unsent):
            data = self._unsent[stream_id]
            while data:
                room = min(conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size)
                if room <= 0:
                    break
                conn.send_data(stream_id, bytes(data[:room]))
                del data[:room]
            if not data and stream_id in self._ending:
                conn.end_stream(stream_id)
                self._ending.discard(stream_id)
                del self._unsent[stream_id]

    # ------------------------------------------------------------------ responses

    def feed(self, data: bytes) -> None:
        import h2.events
        import h2.exceptions

        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self.errors.append(repr(exc))
            return
        for event in events:
            if isinstance(event, h2.events.ResponseReceived):
                response = self._open.get(event.stream_id)
                if response is None:
                    self.errors.append(f"a response on stream {event.stream_id}")
                    continue
                headers = [(bytes(k).decode(), bytes(v).decode()) for k, v in event.headers or ()]
                response.status = int(dict(headers)[":status"])
                response.headers = [(k, v) for k, v in headers if not k.startswith(":")]
            elif isinstance(event, h2.events.DataReceived):
                response = self._open.get(event.stream_id)
                if response is not None:
                    response.body += event.data or b""
                flow = event.flow_controlled_length or 0
                stream_id = event.stream_id or 0
                if self.acks:
                    self.conn.acknowledge_received_data(flow, stream_id)
                else:
                    self._owed[stream_id] = self._owed.get(stream_id, 0) + flow
            elif isinstance(event, h2.events.StreamEnded):
                response = self._open.pop(event.stream_id, None)
                if response is not None:
                    response.complete = True
                    self.responses.append(response)
            elif isinstance(event, h2.events.StreamReset):
                self.resets[event.stream_id] = int(event.error_code or 0)
                self._open.pop(event.stream_id, None)
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.goaway = int(event.error_code or 0)

    def pending(self) -> Response | None:
        return next((r for r in self._open.values() if r.status), None)

    def give_back(self) -> bytes:
        """Acknowledge what was read while `acks` was off (WINDOW_UPDATE frames)."""
        self.acks = True
        for stream_id, flow in self._owed.items():
            self.conn.acknowledge_received_data(flow, stream_id)
        self._owed.clear()
        return self.conn.data_to_send()
