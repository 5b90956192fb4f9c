"""Answers the HTTP/1.1 proxy writes itself, without a backend: a middleware's reply (a
redirect), an ACME HTTP-01 token, an error status; and the router's request hooks that
may give the first (`_request_phase`, the one place the HTTP/1 front end runs them).

`LocalAnswers` is a mixin of `HttpProxy` (edge/http1/protocol.py), like `ResponseSide`: it holds
no state of its own. Each answer keeps the client connection unless the request was not
read to its end, asked for an upgrade, or the connection is draining, and then says
`Connection: close`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from proxynow.edge.core.errors import error_response
from proxynow.edge.http.exchange import Exchange
from proxynow.edge.http.middlewares import Defer, Reply, run_request
from proxynow.edge.http1.response import CLOSE, status_line

if TYPE_CHECKING:
    from proxynow.edge.graph.build import HttpTarget
    from proxynow.edge.graph.state import WorkerState

__all__ = ["LocalAnswers"]

log = logging.getLogger(__name__)


class LocalAnswers:
    """The answers of `HttpProxy` that no backend gives (a mixin: state lives in its slots)."""

    if not TYPE_CHECKING:
        __slots__ = ()  # the attributes are HttpProxy's slots (mypy checks them here)
    else:
        transport: asyncio.Transport
        loop: asyncio.AbstractEventLoop
        state: WorkerState
        shutting_down: bool
        active: Exchange | None
        closed: bool

        def _finish(self, ex: Exchange, now: float) -> None: ...
        def _forward(self, ex: Exchange, target: HttpTarget) -> None: ...

    def _closes(self, ex: Exchange) -> bool:
        """Whether the connection ends after this answer (`ex.keep` is set to match)."""
        close = not (ex.keep_alive and ex.complete) or self.shutting_down or ex.upgrade
        ex.keep = not close
        return close

    def _request_phase(self, ex: Exchange, target: HttpTarget) -> bool:
        """Run the router's request hooks; True when they answered `ex` or it waits for
        one of them (then `_resumed` goes on, from the step's callback)."""
        assert target.chain is not None
        result = run_request(target.chain.request, ex)
        if result is None:
            return False
        if isinstance(result, Reply):
            self._reply(ex, result)
            return True
        self._defer(ex, target, result)
        return True

    def _defer(self, ex: Exchange, target: HttpTarget, deferred: Defer) -> None:
        # The one closure a deferring step costs; as in `_dial`, no task: the step calls
        # back. Body bytes arriving meanwhile wait in `ex.pending` (`_send_body`).
        deferred.start(lambda reply: self._resumed(ex, target, reply))

    def _resumed(self, ex: Exchange, target: HttpTarget, reply: Reply | None) -> None:
        """A deferred step is done: go on to the service, or answer with its reply."""
        if ex is not self.active or self.closed or ex.status or ex.server is not None:
            return  # the client left meanwhile, or a second resume: nothing to do
        try:
            if reply is None:
                self._forward(ex, target)
            else:
                self._reply(ex, reply)
        except Exception as exc:  # runs in the step's callback: nobody else would see it
            log.error("internal error resuming a request; closing the connection", exc_info=exc)
            self.transport.close()

    def _reply(self, ex: Exchange, reply: Reply) -> None:
        """Write a middleware's reply: status, its headers, the framing, then the body."""
        ex.status = reply.status
        parts = [status_line(reply.status)]
        for name, value in reply.headers:
            parts += (name, b": ", value, b"\r\n")
        parts.append(b"Content-Length: %d\r\n" % len(reply.body))
        if self._closes(ex):
            parts.append(CLOSE)
        parts.append(b"\r\n")
        if reply.body and ex.method_b != b"HEAD":
            parts.append(reply.body)
            ex.bytes_out = len(reply.body)
        self.transport.write(b"".join(parts))
        self._finish(ex, self.loop.time())

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
