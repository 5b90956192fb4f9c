"""The owner of a backend response nobody relays: its body is read and dropped, then the
connection goes back to its pool (or is closed).

The `errors` middleware replaces a backend's response once its head is known: the client
gets the error page instead, and what remains of the backend's response must still be
read off the connection before it can carry another request (closing it would cost a new
connection per error). Reading goes on at the backend's pace, with no buffering.
"""

from __future__ import annotations

import asyncio

from proxynow.edge.message.headers import ResponseHead
from proxynow.edge.upstream.connection import UpstreamConnection

__all__ = ["Drain"]


class Drain:
    """The `Owner` (edge/upstream/connection.py) of a response being discarded."""

    __slots__ = ("reusable",)

    def __init__(self, reusable: bool) -> None:
        # False when the request was not sent whole: the connection is then closed at the end.
        self.reusable = reusable

    def upstream_head(self, conn: UpstreamConnection, status: int, head: ResponseHead) -> None:
        """Never called: a drain starts after the head."""

    def upstream_body(self, data: bytes) -> None:
        """Dropped."""

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
