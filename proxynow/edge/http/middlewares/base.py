"""The middleware step interface: phase hooks, a direct reply, a compiled chain.

A middleware type is one module whose builder turns its configuration into a `Step`: a
few optional hooks, one per phase of an exchange. `compile_chain` (compile.py) gathers the
hooks of a router's steps into a `Chain` of per-phase tuples once per graph build, so a
request runs plain bound callables; a router without middlewares has no chain at all and
pays one `is not None` test. The hooks:

- request (`RequestHook`): the request head is complete and routed. Return None to go on
  (possibly after rewriting the request through the header API, edge/message/headers.py), a `Reply`
  to answer without the service, or a `Defer` when the answer needs something that takes
  time (forwardAuth's subrequest, an errors page's service).
- response head (`ResponseHeadHook`): the backend's status and head, before they are sent;
  the head may be rewritten through the header API, or the response replaced (a `Defer`
  whose resume gets the `Reply` to send instead: the errors middleware).
- response body (`ResponseBodyHook`): each chunk of the backend's body and the end
  (`end=True`, possibly with an empty chunk); returns the bytes to send instead.
- outcome (`OutcomeHook`): once per exchange, when it ends however it ends: the exchange
  carries the status (0: nothing was answered), its start and byte counts; `now` is the
  loop time at the end (the request's duration is `now - exchange.start`).

Waiting never costs a task per request (../shared/DESIGN.md, the hot path): a `Defer` holds a
`start(resume)` function the front end calls once, passing the callback to call when the
step is done (`resume(None)`: go on with the next step, `resume(reply)`: answer), exactly
as `HttpProxy._dial` hands a callback to the pool's dial (edge/http1/protocol.py). The step calls
`resume` from whatever callback ends its wait: a protocol's, a timer's, another dial's.
`run_request` continues the chain after the deferred step by itself, so front ends see one
result whatever the number of steps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from proxynow.edge.message.headers import ResponseHead

if TYPE_CHECKING:
    from proxynow.config.middlewares import Middleware
    from proxynow.edge.http.exchange import Exchange
    from proxynow.edge.upstream.pool import PoolRegistry
    from proxynow.edge.upstream.server import Pick

__all__ = [
    "RESEND",
    "BuildContext",
    "Builder",
    "Chain",
    "Defer",
    "FailureHook",
    "OutcomeHook",
    "Reply",
    "RequestHook",
    "ResponseBodyHook",
    "ResponseHeadHook",
    "Resume",
    "Step",
    "ending_with",
    "gather",
    "run_request",
    "starting_with",
]


@dataclass(frozen=True, slots=True)
class Reply:
    """A direct answer, version-neutral: the front end writes the status line, these
    headers, the framing (Content-Length of `body`) and its connection headers."""

    status: int
    headers: tuple[tuple[bytes, bytes], ...] = ()
    body: bytes = b""


# Called once by a deferred step when it is done: None goes on, a Reply answers.
Resume = Callable[[Reply | None], None]

# What a response-head hook's `Defer` resumes with to have the request sent again (retry on
# a status): the backend's answer is discarded, the server picked anew (dispatch `replace`).
RESEND = Reply(0)


@dataclass(frozen=True, slots=True)
class Defer:
    """A request hook's answer when it must wait: `start(resume)` begins the wait; the
    step calls `resume` once, later, from a callback (never from a task of its own)."""

    start: Callable[[Resume], None]


RequestHook = Callable[["Exchange"], "Reply | Defer | None"]
# None: the (possibly rewritten) head goes on; a Defer: the response is replaced (errors):
# the backend's is discarded and the step resumes with the `Reply` to send instead.
ResponseHeadHook = Callable[["Exchange", int, "ResponseHead"], "Defer | None"]
ResponseBodyHook = Callable[["Exchange", bytes, bool], bytes]
OutcomeHook = Callable[["Exchange", float], None]
# The upstream could not be reached and nothing was sent to it (a dial that failed): the
# status about to be answered, and `again`, which sends the request anew (picking a server
# again). True: the hook takes it over (it will call `again` later, once); False: answer.
FailureHook = Callable[["Exchange", int, Callable[[], None]], bool]


@dataclass(frozen=True, slots=True)
class Step:
    """One middleware as a router runs it: its hooks (None: nothing in that phase), or,
    for a chain, the steps of its members in order."""

    kind: str  # the Traefik type name (`redirectScheme`), for logs and tests
    request: RequestHook | None = None
    response_head: ResponseHeadHook | None = None
    response_body: ResponseBodyHook | None = None
    outcome: OutcomeHook | None = None
    failure: FailureHook | None = None
    members: tuple[Step, ...] = ()
    # The request headers (lower-case names) `request` may change; None: any of them.
    rewrites: frozenset[bytes] | None = None
    # One response-head hook doing what `request`, `response_head` and `outcome` do, reading
    # the request head at the response instead of keeping what it read per request; the
    # request headers it reads. `gather` runs it in their place when no request hook after
    # this step may change those headers (compress behind ipAllowList, rateLimit...).
    late: ResponseHeadHook | None = None
    reads: frozenset[bytes] = frozenset()


@dataclass(frozen=True, slots=True)
class BuildContext:
    """What a builder may know besides its own configuration."""

    router: str  # the router compiled (for log lines)
    secure: bool  # whether the router is served over TLS on this entrypoint
    # A middleware reference (as a router or chain writes it) → its step; None when it is
    # missing (logged), not implemented (reported by `proxynow check`) or a cycle.
    resolve: Callable[[str], Step | None]
    # The worker's upstream pools, for a step that sends subrequests (forwardAuth): its
    # connections are kept and swept with the backends'. None outside a worker's build.
    pools: PoolRegistry | None = None
    # A service name (as a router writes it) → its pick, for a step that sends requests to a
    # service of the configuration (errors). None outside a worker's build.
    service: Callable[[str], Pick | None] | None = None


# A middleware type's builder: its configuration (the `Middleware` with its type's field
# set) and the context in, the step out. The registry (registry.py) maps type names to them.
Builder = Callable[["Middleware", BuildContext], Step]


@dataclass(frozen=True, slots=True)
class Chain:
    """A router's steps compiled: per phase, the hooks in order (empty: nothing to call);
    response heads in reverse order, innermost first (see `gather`)."""

    request: tuple[RequestHook, ...] = ()
    response_head: tuple[ResponseHeadHook, ...] = ()
    response_body: tuple[ResponseBodyHook, ...] = ()
    outcome: tuple[OutcomeHook, ...] = ()
    failure: tuple[FailureHook, ...] = ()
    # Per request hook: how many response-head hooks belong to the steps before it. A
    # `Reply` from request hook i goes through the last `answered[i]` of them, as in
    # Traefik an answer from a middleware passes the response writers of those around it
    # (CORS headers on forwardAuth's 401). Empty: no reply needs any.
    answered: tuple[int, ...] = ()


def gather(steps: Iterable[Step]) -> Chain | None:
    """The hooks of `steps` (chains flattened) per phase; None when there are none."""
    request: list[RequestHook] = []
    head: list[ResponseHeadHook] = []
    body: list[ResponseBodyHook] = []
    outcome: list[OutcomeHook] = []
    failure: list[FailureHook] = []
    answered: list[int] = []
    flat = list(_flat(steps))
    for index, step in enumerate(flat):
        if step.late is not None and _unchanged_after(flat, index, step.reads):
            head.append(step.late)
        else:
            if step.request is not None:
                request.append(step.request)
                answered.append(len(head))
            if step.response_head is not None:
                head.append(step.response_head)
            if step.outcome is not None:
                outcome.append(step.outcome)
        if step.response_body is not None:
            body.append(step.response_body)
        if step.failure is not None:
            failure.append(step.failure)
    if not (request or head or body or outcome or failure):
        return None
    outer = tuple(answered) if any(answered) else ()
    # Response heads innermost first: in Traefik each middleware wraps the response writer
    # of the ones after it, so the outermost writes last and its header wins (measured:
    # two `headers` setting X-Who, Traefik 3.7 answers the outer one's value).
    inner_first = tuple(reversed(head))
    return Chain(tuple(request), inner_first, tuple(body), tuple(outcome), tuple(failure), outer)


def _unchanged_after(flat: list[Step], index: int, names: frozenset[bytes]) -> bool:
    """Whether no request hook after `flat[index]` may change the request headers `names`."""
    for step in flat[index + 1 :]:
        if step.request is not None and (step.rewrites is None or step.rewrites & names):
            return False
    return True


def _flat(steps: Iterable[Step]) -> Iterable[Step]:
    for step in steps:
        yield step
        yield from _flat(step.members)


def run_request(hooks: tuple[RequestHook, ...], exchange: Exchange) -> Reply | Defer | None:
    """Run the request hooks in order until one answers or defers. A `Defer` returned
    here already continues with the hooks after the one that deferred."""
    # The loop every request of a router with middlewares runs: nothing but the calls
    # until a hook has something to say.
    for index, hook in enumerate(hooks):
        result = hook(exchange)
        if result is not None:
            return _decided(hooks, exchange, index, result)
    return None


def _run_from(
    hooks: tuple[RequestHook, ...], exchange: Exchange, first: int
) -> Reply | Defer | None:
    for index in range(first, len(hooks)):
        result = hooks[index](exchange)
        if result is not None:
            return _decided(hooks, exchange, index, result)
    return None


def _decided(
    hooks: tuple[RequestHook, ...], exchange: Exchange, index: int, result: Reply | Defer
) -> Reply | Defer:
    """Hook `index` answered or deferred: its reply through the heads around it, or its
    `Defer` followed by the hooks after it."""
    if isinstance(result, Defer):
        if index + 1 < len(hooks) or _outer_heads(exchange, index):
            return _then(result, hooks, exchange, index)
        return result
    return _answered(exchange, index, result)


def _then(deferred: Defer, hooks: tuple[RequestHook, ...], exchange: Exchange, index: int) -> Defer:
    """`deferred` (from hook `index`), followed (when it resumes with None) by the hooks
    after it; a reply it resumes with passes the response-head hooks around it."""

    def start(resume: Resume) -> None:
        def resumed(reply: Reply | None) -> None:
            if reply is not None:
                resume(_answered(exchange, index, reply))
                return
            result = _run_from(hooks, exchange, index + 1)
            if isinstance(result, Defer):
                result.start(resume)
            else:
                resume(result)

        deferred.start(resumed)

    return Defer(start)


def ending_with(chain: Chain | None, hook: RequestHook) -> Chain:
    """`chain` with `hook` as its last request hook (a service the data plane answers
    itself: `noop@internal`); its answer passes every response-head hook of the chain."""
    if chain is None:
        return Chain(request=(hook,))
    answered = chain.answered
    if answered or chain.response_head:
        before = answered or (0,) * len(chain.request)
        answered = (*before, len(chain.response_head))
    return Chain(
        (*chain.request, hook),
        chain.response_head,
        chain.response_body,
        chain.outcome,
        chain.failure,
        answered,
    )


def starting_with(chain: Chain | None, hook: RequestHook) -> Chain:
    """`chain` with `hook` as its first request hook (one that never answers: headerLabels'
    labelling, edge/http/header_labels.py)."""
    if chain is None:
        return Chain(request=(hook,))
    answered = (0, *chain.answered) if chain.answered else ()
    return Chain(
        (hook, *chain.request),
        chain.response_head,
        chain.response_body,
        chain.outcome,
        chain.failure,
        answered,
    )


def _outer_heads(exchange: Exchange, index: int) -> int:
    """How many response-head hooks a reply from request hook `index` passes."""
    chain = exchange.chain
    if not isinstance(chain, Chain) or not chain.answered:
        return 0
    return chain.answered[index]


def _answered(exchange: Exchange, index: int, reply: Reply) -> Reply:
    """`reply` through the response-head hooks of the steps before hook `index`."""
    count = _outer_heads(exchange, index)
    if not count:
        return reply
    chain = exchange.chain
    assert isinstance(chain, Chain)
    head = ResponseHead()
    for name, value in reply.headers:
        head.add(name, value)
    head.content_length = b"%d" % len(reply.body)  # as the front end will frame it
    exchange.transform = None
    heads = chain.response_head  # innermost first: the steps before `index` are the last
    for hook in heads[len(heads) - count :]:
        hook(exchange, reply.status, head)  # a replacement of a reply is not one: ignored
    headers = tuple(pair for pair in head.items() if pair[0] not in _FRAMING)
    transform = _taken(exchange)
    if transform is None:
        return Reply(reply.status, headers, reply.body)
    return Reply(reply.status, headers, transform(reply.body, True))  # compress: encoded whole


def _taken(exchange: Exchange) -> Callable[[bytes, bool], bytes] | None:
    """What a response-head hook set to transform the body with, taken off the exchange."""
    transform = exchange.transform
    exchange.transform = None
    return transform


# What `ResponseHead.items` shows of the framing; a reply's is the front end's to write.
_FRAMING = frozenset((b"Content-Length", b"Transfer-Encoding", b"Connection", b"Upgrade"))
