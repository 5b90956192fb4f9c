"""One backend server as a request needs it, and the pick that chooses one.

A `Server` is built by the graph (edge/graph/services.py) from a load balancer's server
entry; it holds its upstream pool and the request-shaping facts. A `Pick` walks a service
tree down to a live server, or None.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from proxynow.edge.balance.least import Load
from proxynow.edge.upstream.pool import UpstreamPool

__all__ = ["Pick", "Server", "no_server"]


@dataclass(frozen=True, slots=True)
class Server:
    """One backend server as a request needs it."""

    url: str
    service: str
    pool: UpstreamPool
    host_header: bytes
    pass_host_header: bool
    path_prefix: bytes
    response_header_timeout: float
    # p2c and leasttime: the server's in-flight count and TTFB (edge/balance/least.py); else None,
    # and then the HTTP protocol does no bookkeeping for it.
    load: Load | None = None


Pick = Callable[[], Server | None]


def no_server() -> Server | None:
    return None
