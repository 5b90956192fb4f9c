"""`metrics.prometheus.headerLabels` on the data plane: a request's header values, as an id.

Traefik labels every request metric with the value of each configured request header
(empty when the header is missing). A worker cannot keep label strings per request, so
`label(table, head)` reads the headers once, when the request is routed, and puts the id of
the combination of values (`HeaderLabels.bits`, edge/core/metrics.py: bounded, values cut
to `VALUE_LIMIT` bytes) into the head's row-key bits, where the metrics row of the
exchange is found when it ends. The graph puts `request_hook(table)` first on every
router's chain when headerLabels is set (and dispatch labels the requests no router took
in the same way), so without headerLabels no request reads a header or tests a flag for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proxynow.edge.core.metrics import BELOW_HEADER, HeaderLabels

if TYPE_CHECKING:
    from proxynow.edge.http.exchange import Exchange
    from proxynow.edge.http.middlewares.base import Reply, RequestHook
    from proxynow.edge.message.headers import RequestHead

__all__ = ["label", "request_hook"]


def label(table: HeaderLabels, head: RequestHead) -> None:
    """Set the header-label id of `head`'s metrics row key (the first value of each header,
    as it is forwarded: a Forwarded header an untrusted client sent is not there)."""
    get = head.get
    headers = table.headers
    if len(headers) == 1:  # the usual case: no list to build
        values: tuple[bytes, ...] = (get(headers[0]) or b"",)
    else:
        values = tuple([get(name) or b"" for name in headers])
    head.bits = head.bits & BELOW_HEADER | table.bits(values)


def request_hook(table: HeaderLabels) -> RequestHook:
    """The request hook that labels a routed request (it never answers)."""

    def hook(exchange: Exchange) -> Reply | None:
        label(table, exchange.head)
        return None

    return hook
