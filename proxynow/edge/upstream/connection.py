"""One HTTP/1.1 connection to a backend, driven by httptools response callbacks.

The connection belongs to its pool while idle and to one client exchange (`owner`) while a
request is in flight; it reports the response to the owner as it is parsed (head, body
chunks, end) and never buffers a body. Completion is reported after `feed_data` returns,
so an owner that immediately reuses or releases the connection never re-enters the parser.

Two things httptools cannot be told: a response to HEAD has no body whatever its
Content-Length says (the parser is replaced after the head), and a close-delimited body
ends at EOF (reported from `connection_lost`). After a 101 the connection becomes a raw
tunnel to the client's transport.

A backend is not trusted to be sane: a response head larger than the transport's
`maxResponseHeaderBytes` or with more than `maxResponseHeaderCount` fields, or a status
below 100, ends the connection before the owner hears of it (the client gets a 502). An
exception raised by the owner while it handles what this connection reports (its
accounting, say) is logged once and closes both connections, so that no client
connection is left waiting for a response that will never come.
"""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Protocol, cast

import httptools
from mypy_extensions import mypyc_attr

from proxynow.edge.message.headers import ResponseHead

if TYPE_CHECKING:
    from proxynow.edge.upstream.transport import PoolKey

__all__ = ["BadResponse", "Home", "Owner", "UpstreamConnection"]

log = logging.getLogger(__name__)


class BadResponse(Exception):
    """A backend's response the proxy refuses to relay (raised inside parser callbacks)."""


class Home(Protocol):
    """The pool a connection belongs to (edge/upstream/pool.py), as the connection sees it:
    a Protocol, so that the pool may import this module and not the other way round."""

    key: PoolKey

    def release(self, conn: UpstreamConnection, now: float) -> None: ...

    def forget(self, conn: UpstreamConnection) -> None: ...


class Owner(Protocol):
    """What the client side of an exchange hears from its upstream connection."""

    def upstream_head(self, conn: UpstreamConnection, status: int, head: ResponseHead) -> None: ...
    def upstream_body(self, data: bytes) -> None: ...
    def upstream_done(self, conn: UpstreamConnection, reusable: bool) -> None: ...
    def upstream_lost(self, conn: UpstreamConnection) -> None: ...
    def upstream_upgraded(self, conn: UpstreamConnection, leftover: bytes) -> None: ...
    def upstream_failed(self, conn: UpstreamConnection, exc: BaseException) -> None: ...
    def upstream_pause(self) -> None: ...
    def upstream_resume(self) -> None: ...


@mypyc_attr(allow_interpreted_subclasses=True)  # upstream/h2.py H2Stream subclasses it
class UpstreamConnection(asyncio.Protocol):
    """A keep-alive connection to one backend address."""

    __slots__ = (
        "body_left",
        "closed",
        "done",
        "got_bytes",
        "head",
        "head_bytes",
        "head_end",
        "head_only",
        "idle_since",
        "in_head",
        "keep_alive",
        "max_head_bytes",
        "max_head_count",
        "owner",
        "parser",
        "pool",
        "reading_paused",
        "reused",
        "skipping",
        "status",
        "trailers",
        "transport",
        "tunnel",
        "unprocessed",
    )

    def __init__(self, pool: Home) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        # One head per connection, reset per exchange (and after a 1xx), so that the
        # parser can call its `add` directly: a Python frame less per response header.
        self.head = ResponseHead()
        self.parser = self._new_parser()
        self.owner: Owner | None = None
        self.status = 0
        self.closed = False
        self.reused = False
        self.got_bytes = False
        self.head_only = False
        self.skipping = 0  # 1: a HEAD response's head was seen, 2: and then bytes of "body"
        self.done = False
        # Bytes of a long Content-Length body still to come, relayed without the parser
        # (see `_relay`); 0 otherwise.
        self.body_left = 0
        self.reading_paused = False
        self.idle_since = 0.0
        self.keep_alive = False
        self.tunnel: asyncio.Transport | None = None
        # The response's trailer fields, read by the owner in `upstream_done`: an HTTP/2
        # stream's (edge/upstream/h2.py), or a chunked HTTP/1.1 body's trailer section.
        # A slot of this class (not the subclass's): compiled code reads this one.
        self.trailers: tuple[tuple[bytes, bytes], ...] = ()
        # Where a chunked response's head ends in `head.lines`: httptools hands trailer
        # fields to the same callback as the head's, so they are the lines past it.
        self.head_end = 0
        # The backend said it did not process the request (only an HTTP/2 stream can:
        # REFUSED_STREAM, or a GOAWAY below it, RFC 9113 §8.7): any method may be resent.
        self.unprocessed = False
        # Bytes read while a response head is incomplete: httptools keeps a header's value
        # by concatenation, so an endless head must be cut by what arrives, not by what the
        # parser has handed over.
        self.in_head = False
        self.head_bytes = 0
        options = pool.key.transport
        self.max_head_bytes = options.max_response_header_bytes
        self.max_head_count = options.max_response_header_count

    def _new_parser(self) -> Any:
        callbacks = SimpleNamespace(
            on_header=self.head.add,
            on_headers_complete=self.on_headers_complete,
            on_body=self.on_body,
            on_message_complete=self.on_message_complete,
        )
        return httptools.HttpResponseParser(callbacks)

    # -- used by the owner

    def send(self, owner: Owner, data: bytes, head_only: bool) -> None:
        """Start an exchange: `data` is the request head (and any body already at hand)."""
        self.owner = owner
        self.head_only = head_only
        self.got_bytes = False
        self.trailers = ()
        self.head.reset()
        self.in_head = True
        self.head_bytes = 0
        assert self.transport is not None
        self.transport.write(data)

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def pause_reading(self) -> None:
        if not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.reading_paused and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's are not subclasses. No TCP_NODELAY here: uvloop and asyncio set it on
        # every TCP transport.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.write(data)
            return
        owner = self.owner
        if owner is None:
            self.close()  # an idle connection has nothing to say; never reuse it
            return
        if self.body_left:
            self._relay(owner, data)
            return
        self.got_bytes = True
        if self.in_head:
            self.head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self.owner = None
            self._report(owner.upstream_upgraded, owner, data[exc.args[0] :])
            return
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, BadResponse) or cause is None:
                self._refuse(cause)
            else:
                self._fail(owner, cause)
            return
        except httptools.HttpParserError:
            self.abort()
            return
        if self.in_head and self.head_bytes > self.max_head_bytes:
            self._refuse(BadResponse("response head over maxResponseHeaderBytes"))
            return
        # The end of a response is reported once the parser has returned (see the module),
        # to the owner of now: a response-head hook may have handed the rest of the
        # response to another (edge/upstream/drain.py) while the parser ran. An owner that
        # lets go of a connection mid-response hands it to a `Drain`, never to None.
        try:
            if self.skipping:
                # The HEAD response ended with its head; bytes the parser took as its body
                # mean the backend misbehaved, so only a clean connection is reused.
                reusable = self.skipping == 1 and self.keep_alive
                self.skipping = 0
                self.parser = self._new_parser()
                current = self.owner  # never None here: see `Subrequest._end`
                self.owner = None
                current.upstream_done(self, reusable and not self.closed)  # type: ignore[union-attr]
            elif self.done:
                self.done = False
                current = self.owner
                self.owner = None
                current.upstream_done(self, self.keep_alive and not self.closed)  # type: ignore[union-attr]
        except Exception as exc:
            self._fail(owner, exc)

    def _relay(self, owner: Owner, data: bytes) -> None:
        """A read of a long body of known length: handed over as read, not through the
        parser, which would copy it once more into a bytes of its own (and scan it). The
        body's end is the parser's message end: a fresh parser takes the next response."""
        left = self.body_left
        size = len(data)
        try:
            if size < left:
                self.body_left = left - size
                owner.upstream_body(data)
                return
            self.body_left = 0
            self.parser = self._new_parser()
            if size > left:  # bytes past the response, unasked: never reuse the connection
                self.keep_alive = False
                data = data[:left]
            owner.upstream_body(data)
            current = self.owner  # the owner of now, as in data_received
            self.owner = None
            if current is not None:
                current.upstream_done(self, self.keep_alive and not self.closed)
        except Exception as exc:
            self._fail(owner, exc)

    def _report(self, call: Any, owner: Owner, arg: bytes) -> None:
        try:
            call(self, arg)
        except Exception as exc:
            self._fail(owner, exc)

    def _refuse(self, reason: BaseException | None) -> None:
        """A response not to relay: the owner hears of a lost backend (a 502)."""
        if reason is not None and log.isEnabledFor(logging.DEBUG):
            log.debug("refusing a response from %s: %s", self.pool.key.host, reason)
        self.abort()

    def _fail(self, owner: Owner, exc: BaseException) -> None:
        """The owner raised while handling this connection's report: end both, once."""
        self.owner = None
        self.abort()
        owner.upstream_failed(self, exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        owner, self.owner = self.owner, None
        if self.tunnel is not None:
            self.tunnel.close()
        elif owner is not None:
            try:
                owner.upstream_lost(self)
            except Exception as error:  # not `exc`, the parameter: mypyc fails on the shadow
                owner.upstream_failed(self, error)
        else:
            self.pool.forget(self)

    def pause_writing(self) -> None:
        if self.owner is not None:
            self.owner.upstream_pause()

    def resume_writing(self) -> None:
        if self.owner is not None:
            self.owner.upstream_resume()

    # -- httptools callbacks

    def on_headers_complete(self) -> None:
        status = self.status = self.parser.get_status_code()
        if status < 100:
            # RFC 9110 §15: three digits, the first 1-5 (Go relays up to 999); below 100
            # is no status at all, and relaying it would let the body pose as a response.
            raise BadResponse(f"status {status:03d}")
        lines = self.head.lines
        if len(lines) > self.max_head_count * 4:  # four items a field, no counter
            raise BadResponse("response head over maxResponseHeaderCount")
        # The reads so far are over the limit: measure the head itself (rarely needed).
        if self.head_bytes > self.max_head_bytes and sum(map(len, lines)) > self.max_head_bytes:
            raise BadResponse("response head over maxResponseHeaderBytes")
        # Read now: llhttp forgets it once the message is complete.
        self.keep_alive = self.parser.should_keep_alive()
        assert self.owner is not None
        self.owner.upstream_head(self, status, self.head)
        if status >= 200:
            self.in_head = False
            if self.head.te:
                self.head_end = len(lines)
            if self.head_only:
                self.skipping = 1
            elif len(self.head.content_length) > 5:  # >= 100,000 bytes: see `_long_body`
                self._long_body()
        elif status != 101:
            self.head.reset()  # an interim response: the final one starts afresh
            self.head_bytes = 0
        else:
            self.in_head = False

    def _long_body(self) -> None:
        """A body of one Content-Length of at least 100,000 bytes (six digits) is relayed
        past the parser once the read that ends the head is parsed (`_relay`). The parser
        validated the field (llhttp refuses a second one); with a Transfer-Encoding the
        parser frames the body."""
        head = self.head
        if not head.te and self.status != 204 and self.status != 304:
            self.body_left = int(head.content_length)

    def on_body(self, body: bytes) -> None:
        if self.skipping:
            self.skipping = 2
            return
        if self.body_left:
            self.body_left -= len(body)
        if self.owner is not None:
            self.owner.upstream_body(body)

    def on_message_complete(self) -> None:
        if self.status >= 200 and not self.skipping:
            self.keep_alive = self.parser.should_keep_alive()
            self.done = True
            if self.head.te and len(self.head.lines) > self.head_end:
                self._take_trailers()

    def _take_trailers(self) -> None:
        """The trailer section's fields, out of the head's lines (four items a field)."""
        lines = self.head.lines
        fields = lines[self.head_end :]
        del lines[self.head_end :]
        self.trailers = tuple((fields[at], fields[at + 2]) for at in range(0, len(fields), 4))
