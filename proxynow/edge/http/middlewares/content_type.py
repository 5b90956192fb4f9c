"""`contentType`: set Content-Type from the body when the backend sent none, as Traefik v3.

Since v3 Traefik leaves a response without Content-Type alone (so does proxynow on every
router); this middleware turns Go's detection back on for its routers: a response with a
body and no Content-Type header gets the type `sniff.detect` finds in its first bytes (what
arrives in the first read of the body, at most 512 bytes looked at). A header the backend
sent, even empty, is kept; HEAD, 204 and 304 answers, empty bodies and bodies of unknown
length (chunked or close-delimited: Traefik's proxy sends their head before any byte, so Go
never sniffs them; found by the differential test) get none. The
deprecated `autoDetect: false` makes the middleware do nothing, as in Traefik (`true` or
unset: detect).

The step only marks the exchange (`exchange.transform = SNIFF`, a transform that changes
no byte): the HTTP/1 front end, which holds a response head until the first body bytes
anyway, adds the header line then (edge/http1/protocol.py `_sniffed`), so the framing the
backend chose is kept and nothing is copied or buffered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proxynow.edge.http.middlewares.base import BuildContext, Step

if TYPE_CHECKING:
    from proxynow.config.middlewares import Middleware
    from proxynow.edge.http.exchange import Exchange
    from proxynow.edge.message.headers import ResponseHead

__all__ = ["SNIFF", "build"]

_NO_BODY = frozenset((204, 304))


# A marker, compared by identity: a front end that sees it adds the sniffed type.
def SNIFF(data: bytes, end: bool) -> bytes:
    """The body as it is: a front end that sees this transform sniffs the first bytes."""
    return data


def build(middleware: Middleware, context: BuildContext) -> Step:
    """The `contentType` builder (registry.py)."""
    options = middleware.content_type
    assert options is not None
    if options.auto_detect is False:
        return Step("contentType")

    def response_head(exchange: Exchange, status: int, head: ResponseHead) -> None:
        if status in _NO_BODY or exchange.method_b == b"HEAD" or exchange.transform is not None:
            return  # no body, or another step (compress) rewrites it
        length = head.content_length
        if length and length != b"0" and not head.te and head.get(b"content-type") is None:
            exchange.transform = SNIFF

    return Step("contentType", response_head=response_head)
