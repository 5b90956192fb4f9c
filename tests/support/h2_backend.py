"""A small HTTP/2 backend (h2c, the `h2` library over blocking sockets) for the faults a
real server cannot produce on demand: refused streams, a GOAWAY below a request, a body
with a Content-Length and trailers, interim responses (103, 100), and a peer that
vanishes (stops answering anything, PING included, without closing).

What it does is chosen by the request's path:

- `/refuse`: RST_STREAM(REFUSED_STREAM) while `refusals` (a count, shared by all the
  connections) is above 0, which it decrements; then an answer as any other path.
  `/refuse-late`: the same once the request's body is in, at its end.
- `/goaway`: while `goaways` is above 0 (decremented), GOAWAY(NO_ERROR) with a last
  stream id below the request, then the connection closes; then an answer.
- `/trailers`: 200, `content-length: 5`, `hello`, then trailers (`x-checksum: abc`,
  `grpc-status: 0`) in the HEADERS frame that ends the stream.
- `/hints`: 103 Early Hints (`link: </style.css>; rel=preload`), then 200 `hinted`.
- `/flood`: ten 103s, then 200 `flooded`.
- `/continue`: 100 Continue as soon as the head is in, then at the request's end 200
  with the body's length (`got <n>`); `/late`: the same answer a second after the
  request's end, without the 100.
- `/drip`: 200, then a byte every half second for ten seconds.
- `/vanish`: the connection goes silent from now on: nothing is answered, not even a
  PING, and nothing is closed (a peer whose packets are dropped); `/quiet`: the same
  after its answer.
- anything else: 200 `ok <path>` with `content-length`.

`max_streams` is announced in SETTINGS_MAX_CONCURRENT_STREAMS; `goaway_first` sends a
GOAWAY with the SETTINGS of every connection. `connections` counts the connections
accepted, `closed` those the proxy closed, `pings` the PINGs received, `requests` the
requests by path.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings

from tests.support.proc import ThreadedServer

__all__ = ["H2Backend"]

_CONFIG = h2.config.H2Configuration(client_side=False, header_encoding=None)


class H2Backend:
    """A threaded h2c backend on 127.0.0.1:0 (a thread per connection)."""

    def __init__(self, max_streams: int | None = None, goaway_first: bool = False) -> None:
        self.lock = threading.Lock()
        self.refusals = 0
        self.goaways = 0
        self.connections = 0
        self.closed = 0
        self.pings = 0
        self.requests: Counter[str] = Counter()
        self.max_streams = max_streams
        self.goaway_first = goaway_first
        self._server = ThreadedServer(self._serve)
        self.port = self._server.port

    def __enter__(self) -> H2Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.close()

    def _take(self, what: str) -> bool:
        """Decrement the count `what` if above 0: whether this request gets the fault."""
        with self.lock:
            left: int = getattr(self, what)
            if left <= 0:
                return False
            setattr(self, what, left - 1)
            return True

    def _serve(self, sock: socket.socket) -> None:
        with self.lock:
            self.connections += 1
        conn = h2.connection.H2Connection(_CONFIG)
        if self.max_streams is not None:
            limit = {h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self.max_streams}
            conn.local_settings = h2.settings.Settings(client=False, initial_values=limit)
        conn.initiate_connection()
        if self.goaway_first:  # a server shutting down: no stream on any new connection
            conn.close_connection(h2.errors.ErrorCodes.NO_ERROR, last_stream_id=0)
        sock.sendall(conn.data_to_send())
        state = _Connection(self, conn, sock)
        state.silent = self.goaway_first  # what comes after the GOAWAY is not read
        try:
            while data := sock.recv(65536):
                if state.silent:
                    continue  # dropped on the floor, PINGs too
                for event in conn.receive_data(data):
                    state.event(event)
                    if state.done:
                        return
                if not state.silent:
                    sock.sendall(conn.data_to_send())
        except OSError:
            pass
        finally:
            with self.lock:
                self.closed += 1
            sock.close()


class _Connection:
    """One connection's requests in progress."""

    def __init__(self, backend: H2Backend, conn: h2.connection.H2Connection, sock: Any) -> None:
        self.backend = backend
        self.conn = conn
        self.sock = sock
        self.paths: dict[int, str] = {}
        self.bodies: dict[int, int] = {}
        self.silent = False
        self.done = False

    def event(self, event: h2.events.Event) -> None:
        conn = self.conn
        if isinstance(event, h2.events.PingReceived):
            with self.backend.lock:
                self.backend.pings += 1
        elif isinstance(event, h2.events.RequestReceived):
            self.request(event)
        elif isinstance(event, h2.events.DataReceived):
            stream_id = event.stream_id or 0
            self.bodies[stream_id] = self.bodies.get(stream_id, 0) + len(event.data or b"")
            conn.acknowledge_received_data(event.flow_controlled_length or 0, stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            stream_id = event.stream_id or 0
            path = self.paths.get(stream_id)
            if path == "/refuse-late" and self.backend._take("refusals"):
                conn.reset_stream(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
            elif path == "/refuse-late":
                self.answer(stream_id, b"ok /refuse-late")
            elif path == "/continue" or path == "/late":
                if path == "/late":
                    time.sleep(1)  # the slow backend (this connection's thread only)
                size = b"%d" % self.bodies.get(stream_id, 0)
                self.answer(stream_id, b"got " + size)

    def request(self, event: h2.events.RequestReceived) -> None:
        stream_id = event.stream_id or 0
        headers = dict(event.headers or [])
        path = headers.get(b":path", b"/").decode()
        with self.backend.lock:
            self.backend.requests[path] += 1
        self.paths[stream_id] = path
        conn = self.conn
        if path == "/refuse" and self.backend._take("refusals"):
            conn.reset_stream(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
        elif path == "/goaway" and self.backend._take("goaways"):
            conn.close_connection(
                h2.errors.ErrorCodes.NO_ERROR, last_stream_id=max(stream_id - 2, 0)
            )
            self.sock.sendall(conn.data_to_send())
            self.done = True
        elif path == "/trailers":
            fields = [(b":status", b"200"), (b"content-length", b"5")]
            conn.send_headers(stream_id, fields)
            conn.send_data(stream_id, b"hello")
            trailers = [(b"x-checksum", b"abc"), (b"grpc-status", b"0")]
            conn.send_headers(stream_id, trailers, end_stream=True)
        elif path == "/hints":
            hint = [(b":status", b"103"), (b"link", b"</style.css>; rel=preload")]
            conn.send_headers(stream_id, hint)
            self.answer(stream_id, b"hinted")
        elif path == "/flood":
            for _ in range(10):
                conn.send_headers(stream_id, [(b":status", b"103"), (b"link", b"</a>")])
            self.answer(stream_id, b"flooded")
        elif path == "/continue":
            conn.send_headers(stream_id, [(b":status", b"100")])
            if event.stream_ended is not None:
                self.answer(stream_id, b"got 0")
        elif path == "/drip":
            conn.send_headers(stream_id, [(b":status", b"200")])
            for _ in range(20):  # a byte each 0.5 s, 10 s in all
                conn.send_data(stream_id, b".")
                self.sock.sendall(conn.data_to_send())
                time.sleep(0.5)
            conn.end_stream(stream_id)
        elif path == "/late":
            pass  # answered at the request's end, a second after it
        elif path == "/vanish":
            self.silent = True
        elif path == "/quiet":
            self.answer(stream_id, b"ok /quiet")
            self.sock.sendall(conn.data_to_send())
            self.silent = True
        else:
            self.answer(stream_id, b"ok " + path.encode())

    def answer(self, stream_id: int, body: bytes) -> None:
        fields = [(b":status", b"200"), (b"content-length", b"%d" % len(body))]
        self.conn.send_headers(stream_id, fields)
        self.conn.send_data(stream_id, body, end_stream=True)
