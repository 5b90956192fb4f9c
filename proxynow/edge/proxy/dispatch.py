"""Version-neutral forwarding: from a parsed request head to an upstream exchange and back.

Written once for every HTTP front end against `Downstream` (edge/proxy/downstream.py):
`route` looks the request up in the graph (timed for proxynow_routing_duration_seconds the
first time a downstream sees a graph), runs the router's middleware chain, answers ACME
HTTP-01 requests, picks a server and attaches a pooled upstream connection or dials one;
`attach` builds the head sent upstream; `complete` and `finish` end an exchange (the
connection back to its pool, the load released, one metrics row observed, the access log
line when the front end has an access log: one test otherwise); `lost` retries
a request the upstream dropped before sending anything, once, when that is safe;
`upgraded` and `hand_off` turn an exchange that got a 101 into a tunnel.

Per-exchange state lives on the `Exchange` (upstream, server, load), so a front end may
have several exchanges in flight on one connection (HTTP/2 streams). No wire format of the
client side is known here, and no HTTP/1 front-end module is imported. Hot path
(../shared/DESIGN.md):
module functions taking the downstream, no task or coroutine per request, one dict lookup
per request for the host, the routing path recomputed only when the raw path changes.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from proxynow.edge.core.errors import ProxyError
from proxynow.edge.core.metrics import METHOD_BITS, request_key
from proxynow.edge.http.exchange import Exchange, retryable
from proxynow.edge.http.header_labels import label
from proxynow.edge.http.middlewares import RESEND, Chain, Defer, Reply, run_request
from proxynow.edge.message.headers import forwarded_headers, upstream_head
from proxynow.edge.proxy.mirror import keep, send
from proxynow.edge.upstream.connection import UpstreamConnection
from proxynow.edge.upstream.drain import Drain
from proxynow.rules import routing_path

if TYPE_CHECKING:
    from proxynow.edge.graph.build import HttpTarget, Server
    from proxynow.edge.message.headers import ResponseHead
    from proxynow.edge.proxy.downstream import Downstream, Sender
    from proxynow.rules import RouteTable

__all__ = [
    "abandon",
    "attach",
    "complete",
    "dial",
    "finish",
    "hand_off",
    "lost",
    "observe",
    "outcome",
    "replace",
    "response_head",
    "route",
    "upgraded",
]

# The head sent upstream is HTTP/1.1 whatever the client's version (an HTTP/2 backend's
# stream turns it into fields, edge/upstream/h2.py).
_CHUNKED = b"Transfer-Encoding: chunked\r\n"


def route(downstream: Downstream, exchange: Exchange, target: HttpTarget | None = None) -> None:
    """Route a request whose head is complete, then answer it or send it upstream. Given
    `target` (the resume path of a router's request hooks), it only picks and sends."""
    if target is None:
        graph = downstream.state.graph
        # A downstream's first request, and the first after a graph swap, has its router lookup
        # timed (proxynow_routing_duration_seconds): the other requests pay nothing.
        fresh = graph is not downstream.graph
        if fresh:
            downstream.graph = graph
            entrypoint = downstream.entrypoint
            downstream.table = (graph.https if entrypoint.tls else graph.http).get(entrypoint.name)
        raw_host = exchange.head.host
        known = downstream.peer_hosts.get(raw_host)
        if known is None:
            known = downstream.peer.learn(raw_host, downstream.peers)
        exchange.host, exchange.forwarded = known
        raw_path = exchange.target
        if raw_path != downstream.raw_path:
            downstream.raw_path = raw_path
            path = raw_path.partition(b"?")[0]
            downstream.path = routing_path(path.decode("utf-8", "surrogateescape"))
        exchange.path = downstream.path
        if downstream.state.http01 and _http01(downstream, exchange):
            return
        table = downstream.table
        if fresh:
            target = _timed_match(downstream, exchange, table)
        else:
            target = table.match(exchange) if table is not None else None
        if target is None:
            header_labels = downstream.state.metrics.header_labels
            if header_labels is not None:  # the entrypoint's series carry them too
                label(header_labels, exchange.head)
            downstream.error(exchange, 404)
            return
        exchange.stats = target.stats
        chain = target.chain
        if chain is not None:
            exchange.chain = chain
            exchange.transform = None  # see Exchange.transform
            exchange.routed = target
            if _request_phase(downstream, exchange, target, chain):
                return
    sticky = target.sticky
    server = target.pick() if sticky is None else sticky(exchange)
    if server is None:
        downstream.error(exchange, 503)
        return
    exchange.server = server
    load = server.load
    if load is not None:  # p2c and leasttime: in flight from the pick to the end
        load.inflight += 1
        exchange.load = load
    if exchange.expect_continue and exchange.version == "1.1" and not exchange.complete:
        exchange.sent_continue = True
    if exchange.upgrade:
        conn = (server.upgrade_pool or server.pool).acquire()
    else:
        conn = server.pool.acquire()
    if conn is not None:
        attach(downstream, exchange, server, conn)
    else:
        dial(downstream, exchange, server, target)


def _request_phase(
    downstream: Downstream, exchange: Exchange, target: HttpTarget, chain: Chain
) -> bool:
    """Run the router's request hooks; True when one answered or the request waits for
    one (a `Defer`: its step calls back, as a dial does, never a task per request)."""
    exchange.client_cert = downstream.client_cert  # only routers with middlewares pay it
    exchange.reader = downstream.body_gate
    result = run_request(chain.request, exchange)
    if result is None:
        return False
    if isinstance(result, Reply):
        downstream.reply(exchange, result)
        return True
    result.start(lambda reply: _resumed(downstream, exchange, target, reply))
    return True


def _resumed(
    downstream: Downstream, exchange: Exchange, target: HttpTarget, reply: Reply | None
) -> None:
    """A deferred step is done: go on to the service, or answer with its reply."""
    if not downstream.wants(exchange) or exchange.status or exchange.server is not None:
        return  # the client left meanwhile, or a second resume: nothing to do
    try:
        if reply is None:
            route(downstream, exchange, target)
        else:
            downstream.reply(exchange, reply)
    except Exception as exc:  # runs in the step's callback: nobody else would see it
        downstream.failed(exc)


def _timed_match(
    downstream: Downstream, exchange: Exchange, table: RouteTable[HttpTarget] | None
) -> HttpTarget | None:
    """The router lookup, timed for proxynow_routing_duration_seconds."""
    started = time.perf_counter()
    target = table.match(exchange) if table is not None else None
    downstream.entrypoint_stats.routed(time.perf_counter() - started)
    return target


def _http01(downstream: Downstream, exchange: Exchange) -> bool:
    """Answer an ACME HTTP-01 request (before any routing or redirect)."""
    answer = downstream.state.challenges.http01_answer(exchange.path)
    if answer is None:
        return False
    downstream.answer(exchange, 200, answer.encode("ascii", "replace"))
    return True


def attach(
    downstream: Sender, exchange: Exchange, server: Server, conn: UpstreamConnection
) -> None:
    """Send the request head (HTTP/1.1, the managed forwarded headers set; and any body
    held so far) on `conn`. The head is built here, not in a function of its own: this
    runs for every request."""
    exchange.upstream = conn
    mirroring = server.mirroring
    if mirroring is not None and exchange.mirror is None:
        keep(exchange, mirroring)  # before the body held so far goes out
    head = exchange.head
    target = server.path_prefix + exchange.target if server.path_prefix else exchange.target
    # A join, not %-formatting: a third of the cost (callgrind).
    start = b" ".join((exchange.method_b, target, b"HTTP/1.1\r\n"))
    host = head.host if server.pass_host_header and head.hosts else server.host_header
    if exchange.chunked:
        framing = _CHUNKED
    elif head.lengths:
        framing = b"Content-Length: %b\r\n" % head.content_length
    else:
        framing = b""
    if head.forwarded or exchange.upgrade:
        forwarded = forwarded_headers(head, downstream.forward_context, exchange.upgrade)
    else:
        forwarded = exchange.forwarded
    data = upstream_head(head, start, host, forwarded, framing)
    pending = exchange.pending
    if pending is not None:
        data = b"".join((data, *pending))
        exchange.pending = None
        exchange.body_sent = True
        if exchange.replay is not None:
            exchange.replay.took(pending)
    conn.send(downstream, data, exchange.method_b == b"HEAD")
    downstream.attached(exchange, conn)


def dial(
    downstream: Downstream, exchange: Exchange, server: Server, target: HttpTarget | None = None
) -> None:
    """Open a connection to `server` (no idle one, or a retry); attach it when it is up.
    With the routed `target`, a dial that fails goes to the router's failure hooks first
    (the retry middleware), which may send the request anew."""
    pool = server.pool if not exchange.upgrade else server.upgrade_pool or server.pool

    def ready(result: UpstreamConnection | ProxyError) -> None:
        try:
            if isinstance(result, ProxyError):
                waiting = downstream.wants(exchange) and exchange.status == 0
                if waiting and not (target and _taken_over(downstream, exchange, target, result)):
                    downstream.error(exchange, result.status)
                return
            if downstream.wants(exchange) and exchange.upstream is None:
                attach(downstream, exchange, server, result)
            else:
                pool.release(result, downstream.loop.time())
        except Exception as exc:  # runs in the dial's task: nobody else would see it
            if isinstance(result, UpstreamConnection):
                result.abort()
            downstream.failed(exc)

    pool.connect(ready)


def _taken_over(
    downstream: Downstream, exchange: Exchange, target: HttpTarget, error: ProxyError
) -> bool:
    """Whether a failure hook of the router takes over a request whose dial failed (then
    it sends the request anew later, through `again`, picking a server again)."""
    chain = exchange.chain
    if chain is None or not chain.failure:
        return False

    def again() -> None:
        if not downstream.wants(exchange) or exchange.status:
            return  # the client left, or it was answered meanwhile
        try:
            route(downstream, exchange, target)
        except Exception as exc:  # runs in a timer's callback: nobody else would see it
            downstream.failed(exc)

    for hook in chain.failure:
        if hook(exchange, error.status, again):
            load = exchange.load
            if load is not None:  # counted again at the next pick
                load.inflight -= 1
                exchange.load = None
            exchange.server = None
            if exchange.stats is not None:
                exchange.stats.retry()  # proxynow_service_retries_total
            return True
    return False


def complete(
    downstream: Downstream, exchange: Exchange, conn: UpstreamConnection, reusable: bool
) -> None:
    """The response was relayed to its end: `conn` goes back to its pool, then `finish`."""
    now = downstream.loop.time()
    exchange.upstream = None
    if conn.reading_paused:
        conn.resume_reading()
    if reusable and exchange.complete:
        conn.pool.release(conn, now)
    else:
        conn.close()
    # `finish` inlined: this runs for every request.
    if exchange.chain is not None:
        outcome(exchange, now)
    load = exchange.load
    if load is not None:
        load.inflight -= 1
        exchange.load = None
    (exchange.stats or downstream.unrouted).observe(
        exchange.status | METHOD_BITS[exchange.method_b] | exchange.head.bits,
        now - exchange.start,
        exchange.bytes_in,
        exchange.bytes_out,
    )
    access = downstream.access_log
    if access is not None:
        access.record(downstream, exchange, now, conn.head)
    if exchange.mirror is not None:
        send(downstream, exchange, attach)
    downstream.ended(exchange, now)


def finish(downstream: Downstream, exchange: Exchange, now: float) -> None:
    """Account for an exchange that is over (answered, relayed or cut), then `ended`."""
    if exchange.chain is not None:
        outcome(exchange, now)
    load = exchange.load
    if load is not None:
        load.inflight -= 1
        exchange.load = None
    # request_key inlined (and all of this in `complete`): this runs for every request.
    (exchange.stats or downstream.unrouted).observe(
        exchange.status | METHOD_BITS[exchange.method_b] | exchange.head.bits,
        now - exchange.start,
        exchange.bytes_in,
        exchange.bytes_out,
    )
    access = downstream.access_log
    if access is not None:
        access.record(downstream, exchange, now, None)
    if exchange.mirror is not None:  # the main server failed: Traefik mirrors all the same
        send(downstream, exchange, attach)
    downstream.ended(exchange, now)


def observe(downstream: Downstream, exchange: Exchange, now: float) -> None:
    """Count an exchange in its router's metrics row (or the entrypoint's unrouted one)."""
    if exchange.chain is not None:
        outcome(exchange, now)
    key = request_key(exchange.status, exchange.method_b, exchange.head.bits)
    stats = exchange.stats or downstream.unrouted
    stats.observe(key, now - exchange.start, exchange.bytes_in, exchange.bytes_out)


def abandon(exchange: Exchange, now: float, downstream: Downstream | None = None) -> None:
    """The client side went away mid-exchange (or its tunnel ended): release the load, drop
    the upstream (its state is unknown, so it is never reused), run the outcome hooks not
    run yet, and write the access log line (a tunnel's is written here, at its end)."""
    if exchange.chain is not None:
        outcome(exchange, now)
    load = exchange.load
    if load is not None:
        load.inflight -= 1
        exchange.load = None
    upstream = exchange.upstream
    if downstream is not None and downstream.access_log is not None:
        origin = upstream.head if upstream is not None and exchange.status else None
        downstream.access_log.record(downstream, exchange, now, origin, abandoned=True)
    if upstream is not None:
        upstream.abort()
        exchange.upstream = None


def response_head(exchange: Exchange, status: int, head: ResponseHead) -> Defer | None:
    """Run the router's response-head hooks on a final response from the backend, before
    the front end writes it (they may change `head` through its header API). Front ends
    call it only when `exchange.chain` is set: a router without middlewares pays one test.
    A hook that replaces the response (errors) returns a `Defer`: the front end then hands
    it to `replace` and writes nothing of the backend's response."""
    chain = exchange.chain
    assert chain is not None
    for hook in chain.response_head:
        replaced = hook(exchange, status, head)
        if replaced is not None:
            assert isinstance(replaced, Defer)
            return replaced
    return None


def replace(
    downstream: Downstream, exchange: Exchange, conn: UpstreamConnection, replaced: Defer
) -> None:
    """Discard the backend's response (its body is read off `conn`, which then goes back
    to its pool) and answer with the reply the replacing step resumes with."""
    exchange.status = 0
    exchange.upstream = None
    conn.owner = Drain(exchange.complete, conn)
    if conn.reading_paused:  # backpressure from the client no longer applies to it
        conn.resume_reading()

    def resumed(reply: Reply | None) -> None:
        if not downstream.wants(exchange) or exchange.status:
            return  # the client left meanwhile, or a second resume
        try:
            if reply is RESEND:
                _resend(downstream, exchange)
            else:
                downstream.reply(exchange, reply if reply is not None else Reply(502))
        except Exception as exc:  # runs in the step's callback: nobody else would see it
            downstream.failed(exc)

    replaced.start(resumed)


def _resend(downstream: Downstream, exchange: Exchange) -> None:
    """Send a request anew whose answer a step discarded (retry on a status): the
    server is picked again, the body kept for it (`Exchange.replay`) goes with the head."""
    load = exchange.load
    if load is not None:  # counted again at the next pick
        load.inflight -= 1
        exchange.load = None
    exchange.server = None
    exchange.transform = None
    exchange.response_head = b""  # a sticky pick adds its cookie again
    exchange.sent_continue = exchange.expect_continue = False  # the body is whole
    replay = exchange.replay
    exchange.pending = replay.again() if replay is not None else None
    exchange.body_sent = False
    if exchange.stats is not None:
        exchange.stats.retry()  # proxynow_service_retries_total
    target = exchange.routed
    assert target is not None
    route(downstream, exchange, target)  # type: ignore[arg-type]


def outcome(exchange: Exchange, now: float) -> None:
    """Run the router's outcome hooks, once per exchange however it ends (the status is 0
    when no response was sent)."""
    chain = exchange.chain
    assert chain is not None
    exchange.chain = None  # once, even if a hook raises
    for hook in chain.outcome:
        hook(exchange, now)


def lost(downstream: Downstream, exchange: Exchange, conn: UpstreamConnection) -> None:
    """The upstream connection ended before a response head: send the request once more on
    a new connection when that is safe (`retryable`), else answer 502."""
    exchange.upstream = None
    if not retryable(exchange, conn):
        downstream.error(exchange, 502)
        return
    exchange.retried = True
    if exchange.body_sent and exchange.replay is not None:  # kept whole: sent again
        exchange.pending = exchange.replay.again()
        exchange.body_sent = False
    server, stats = exchange.server, exchange.stats
    assert server is not None and stats is not None  # set when it was sent
    stats.retry()
    dial(downstream, exchange, server)


def upgraded(downstream: Downstream, exchange: Exchange, conn: UpstreamConnection) -> bool:
    """The backend switched protocols: True if that may stand (a 101 to a request that
    asked for an upgrade), else the backend is dropped and the exchange answered 502."""
    if conn.status != 101 or not exchange.upgrade:
        conn.abort()
        exchange.upstream = None
        downstream.error(exchange, 502)
        return False
    exchange.status = 101
    return True


def hand_off(
    downstream: Downstream, exchange: Exchange, conn: UpstreamConnection, client: asyncio.Transport
) -> None:
    """Join an upgraded upstream connection to the client side (after the 101 was written):
    bytes pass raw both ways from now on. The exchange is counted now; its load stays in
    flight until the tunnel ends (`abandon`)."""
    exchange.upstream = None
    conn.tunnel = client
    conn.owner = downstream  # only for pause/resume_writing: backpressure from the backend
    observe(downstream, exchange, downstream.loop.time())
