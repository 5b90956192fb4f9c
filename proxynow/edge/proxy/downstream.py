"""What version-neutral dispatch (edge/proxy/dispatch.py) needs from an HTTP front end.

A `Downstream` is the client side of exchanges: the HTTP/1 front end (`HttpProxy` in
edge/http1/protocol.py) is one per connection with one exchange answered at a time; the HTTP/2 one
(`H2Proxy` in edge/http2/protocol.py) is one per connection too, each stream an exchange of its
own (and the `Owner` of that exchange's upstream connection), several in flight at once.
Dispatch reads the connection's context through it (worker state, entrypoint, peer memos, a
route cache), and hands answers and the end of an exchange back to it; the front end owns
its wire format, its deadlines and what follows an exchange (keep-alive, pipelining, a
stream's end). Everything that belongs to one exchange lives on
the `Exchange` (its upstream connection, server, load, counters), never on the downstream's
connection, so several exchanges can be in flight on one connection.

A downstream is also the `Owner` of the upstream connection its exchange is sent on
(edge/upstream/connection.py): the upstream reports the response to it (over HTTP/2 only until
`attached`, which hands the upstream to the stream).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from proxynow.edge.upstream.connection import Owner

if TYPE_CHECKING:
    from proxynow.edge.core.flow import ReadGate
    from proxynow.edge.core.metrics import EntryPointStats, TargetStats, WorkerMetrics
    from proxynow.edge.graph.build import HttpTarget, RouterGraph
    from proxynow.edge.http.access import AccessLog
    from proxynow.edge.http.exchange import EntryPointRuntime, Exchange
    from proxynow.edge.http.middlewares import Reply
    from proxynow.edge.http.peers import Peer, PeerCache
    from proxynow.edge.message.headers import ForwardContext
    from proxynow.edge.upstream.connection import UpstreamConnection
    from proxynow.ipc.challenges import ChallengeSet
    from proxynow.rules import RouteTable

__all__ = ["Downstream", "Sender", "Worker"]


class Worker(Protocol):
    """The worker's state as dispatch reads it (the current graph, ACME HTTP-01 answers)."""

    @property
    def graph(self) -> RouterGraph: ...
    @property
    def http01(self) -> Mapping[str, str]: ...  # falsy unless a challenge is pending
    @property
    def challenges(self) -> ChallengeSet: ...
    @property
    def metrics(self) -> WorkerMetrics: ...  # its header_labels, for unrouted requests


class Sender(Owner, Protocol):
    """What `dispatch.attach` needs of the side a request comes from: the forwarded-header
    context and a word once the head went out. A front end's `Downstream` is one; a mirror's
    copy has its own (edge/proxy/mirror.py), which throws the answer away."""

    @property
    def forward_context(self) -> ForwardContext: ...  # `peer.ctx`

    def attached(self, exchange: Exchange, conn: UpstreamConnection) -> None:
        """The request head went out on `conn`: apply backpressure, 100 Continue, deadlines."""


class Downstream(Sender, Protocol):
    """The client side of an exchange, as dispatch sees it."""

    # The connection's context (read only).
    @property
    def state(self) -> Worker: ...
    @property
    def entrypoint(self) -> EntryPointRuntime: ...
    @property
    def entrypoint_stats(self) -> EntryPointStats: ...
    @property
    def unrouted(self) -> TargetStats: ...  # where an exchange no router matched is counted
    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...
    @property
    def peer(self) -> Peer: ...
    @property
    def peers(self) -> PeerCache: ...
    @property
    def peer_hosts(self) -> dict[bytes, tuple[str, bytes]]: ...  # `peer.hosts`
    @property
    def client_cert(self) -> bytes: ...  # the client's TLS certificate (DER), b"": none
    @property
    def body_gate(self) -> ReadGate | None: ...  # HTTP/1's read gate, for buffering
    @property
    def transport(self) -> asyncio.BaseTransport: ...  # the client connection's
    @property
    def access_log(self) -> AccessLog | None: ...  # None: off (or off on this entrypoint)

    # The route cache dispatch keeps on it: the graph and route table last used, and the
    # routing path of the last raw path (clients repeat theirs).
    graph: RouterGraph | None
    table: RouteTable[HttpTarget] | None
    raw_path: bytes
    path: str
    # What the access log made of this connection at its first line (None until then).
    access_peer: Any

    def error(self, exchange: Exchange, status: int) -> None:
        """Answer with an error status (nothing of a response was sent), then `ended`."""

    def reply(self, exchange: Exchange, reply: Reply) -> None:
        """Send a middleware's answer (edge/http/middlewares/base.py `Reply`), then `ended`."""

    def answer(self, exchange: Exchange, status: int, body: bytes) -> None:
        """Answer with a text/plain body (ACME HTTP-01), then `ended`."""

    def ended(self, exchange: Exchange, now: float) -> None:
        """The exchange is over and accounted for: what comes next on the connection."""

    def wants(self, exchange: Exchange) -> bool:
        """Whether `exchange` still waits for its upstream (a dial's result may come late)."""

    def failed(self, exc: BaseException) -> None:
        """Handling a dial's result raised (a bug): end the client side."""
