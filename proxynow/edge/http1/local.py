"""Answers the HTTP/1.1 proxy writes itself, without a backend: a middleware's reply (a
redirect), an ACME HTTP-01 token, an error status.

`LocalAnswers` is a mixin of `HttpProxy` (edge/http1/protocol.py), like `ResponseSide`: it holds
no state of its own. Each answer keeps the client connection unless the request was not
read to its end, asked for an upgrade, or the connection is draining, and then says
`Connection: close`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from proxynow.edge.core.errors import error_response
from proxynow.edge.http.exchange import Exchange
from proxynow.edge.http1.response import CLOSE, status_line

if TYPE_CHECKING:
    from proxynow.edge.graph.state import WorkerState

__all__ = ["LocalAnswers"]


class LocalAnswers:
    """The answers of `HttpProxy` that no backend gives (a mixin: state lives in its slots)."""

    if not TYPE_CHECKING:
        __slots__ = ()  # the attributes are HttpProxy's slots (mypy checks them here)
    else:
        transport: asyncio.Transport
        loop: asyncio.AbstractEventLoop
        state: WorkerState
        shutting_down: bool

        def _finish(self, ex: Exchange, now: float) -> None: ...

    def _closes(self, ex: Exchange) -> bool:
        """Whether the connection ends after this answer (`ex.keep` is set to match)."""
        close = not (ex.keep_alive and ex.complete) or self.shutting_down or ex.upgrade
        ex.keep = not close
        return close

    def _respond(self, ex: Exchange, respond: Callable[[Exchange], bytes | None]) -> bool:
        """Run the router's middleware chain; True if a middleware answered `ex`."""
        reply = respond(ex)
        if reply is None:
            return False
        ex.status = int(reply[9:12])
        if self._closes(ex):
            head, _, rest = reply.partition(b"\r\n")
            reply = head + b"\r\n" + CLOSE + rest
        self.transport.write(reply)
        self._finish(ex, self.loop.time())
        return True

    def _http01(self, ex: Exchange) -> bool:
        """Answer an ACME HTTP-01 request (before any routing or redirect)."""
        answer = self.state.challenges.http01_answer(ex.path)
        if answer is None:
            return False
        body = answer.encode("ascii", "replace")
        ex.status = 200
        ex.bytes_out = len(body)
        head = b"%sContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n%s\r\n" % (
            status_line(200),
            len(body),
            CLOSE if self._closes(ex) else b"",
        )
        self.transport.write(head + body)
        self._finish(ex, self.loop.time())
        return True

    def _error(self, ex: Exchange, status: int) -> None:
        """Answer `ex` with an error status (before any response byte was sent)."""
        ex.status = status
        close = self._closes(ex)
        if ex.upstream is not None:
            ex.upstream.abort()
            ex.upstream = None
        self.transport.write(error_response(status, close))
        self._finish(ex, self.loop.time())
