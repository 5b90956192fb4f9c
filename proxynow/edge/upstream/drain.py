"""The owner of a backend response nobody relays: its body is read and dropped, then the
connection goes back to its pool (or is closed).

The `errors` middleware replaces a backend's response once its head is known: the client
gets the error page instead, and what remains of the backend's response must still be
read off the connection before it can carry another request (closing it would cost a new
connection per error). Reading goes on at the backend's pace, with no buffering, up to
`DRAIN_LIMIT` bytes: past that the connection is dropped.
"""

from __future__ import annotations

import asyncio

from proxynow.edge.message.headers import ResponseHead
from proxynow.edge.upstream.connection import UpstreamConnection

__all__ = ["DRAIN_LIMIT", "Drain"]

# Bytes of a discarded body read before the connection is dropped instead: a new
# connection costs less than reading a large (or endless) body nobody wants.
DRAIN_LIMIT = 256 * 1024


class Drain:
    """The `Owner` (edge/upstream/connection.py) of a response being discarded."""

    __slots__ = ("conn", "left", "reusable")

    def __init__(self, reusable: bool, conn: UpstreamConnection | None = None) -> None:
        # False when the request was not sent whole: the connection is then closed at the end.
        self.reusable = reusable
        self.conn = conn  # None: the connection is being dropped anyway
        self.left = DRAIN_LIMIT

    def upstream_head(self, conn: UpstreamConnection, status: int, head: ResponseHead) -> None:
        """Never called: a drain starts after the head."""

    def upstream_body(self, data: bytes) -> None:
        """Dropped; past `DRAIN_LIMIT` the connection is dropped too."""
        conn = self.conn
        if conn is not None:
            self.left -= len(data)
            if self.left < 0:
                self.conn = None
                conn.abort()

    def upstream_done(self, conn: UpstreamConnection, reusable: bool) -> None:
        conn.owner = None
        if conn.reading_paused:
            conn.resume_reading()
        if reusable and self.reusable:
            conn.pool.release(conn, asyncio.get_running_loop().time())
        else:
            conn.close()

    def upstream_lost(self, conn: UpstreamConnection) -> None:
        """A close-delimited body ended, or the backend went: nothing to do."""

    def upstream_upgraded(self, conn: UpstreamConnection, leftover: bytes) -> None:
        conn.abort()

    def upstream_failed(self, conn: UpstreamConnection, exc: BaseException) -> None:
        conn.abort()

    def upstream_pause(self) -> None:
        """Nothing is written to the backend any more."""

    def upstream_resume(self) -> None:
        """See `upstream_pause`."""
