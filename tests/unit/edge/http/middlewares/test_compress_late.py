"""compress decided at the response (`Step.late`) when nothing after it in the chain can
change the request headers it reads, and at the request otherwise: the same answers."""

from __future__ import annotations

import gzip
import ipaddress
from typing import Any

from proxynow.config.middlewares import Middleware
from proxynow.edge.http.exchange import Exchange
from proxynow.edge.http.middlewares import Chain, Reply, compile_chain, run_request
from proxynow.edge.http.middlewares.base import ending_with
from proxynow.edge.message.headers import RequestHead, ResponseHead

COMPRESS = {"compress": {}}
# A step after compress that rewrites the header compress reads: it must be read before.
NO_GZIP = {"headers": {"customRequestHeaders": {"Accept-Encoding": "identity"}}}
OTHER = {"headers": {"customRequestHeaders": {"X-Other": "1"}}}


def chain(*specs: dict[str, Any]) -> Chain:
    names = [f"m{index}" for index in range(len(specs))]
    table = {name: Middleware.model_validate(spec) for name, spec in zip(names, specs, strict=True)}
    compiled = compile_chain("r", names, table, secure=False)
    assert isinstance(compiled, Chain)
    return compiled


def answer(
    compiled: Chain,
    length: bytes = b"4096",
    accept: bytes = b"gzip",
    method: bytes = b"GET",
) -> tuple[ResponseHead, Exchange]:
    """Run the chain on a request accepting `accept`, then on a text response."""
    head = RequestHead(True)
    head.add(b"Host", b"app.test")
    head.add(b"Accept-Encoding", accept)
    exchange = Exchange(head, 0.0, None)
    exchange.method_b, exchange.target, exchange.chain = method, b"/", compiled
    exchange.transform = None
    assert run_request(compiled.request, exchange) is None
    response = ResponseHead()
    response.add(b"Content-Length", length)
    response.add(b"Content-Type", b"text/plain")
    for hook in compiled.response_head:
        assert hook(exchange, 200, response) is None
    for outcome in compiled.outcome:
        outcome(exchange, 1.0)
    return response, exchange


def test_alone_compress_runs_at_the_response_only_and_keeps_nothing() -> None:
    compiled = chain(COMPRESS)
    assert compiled.request == () and compiled.outcome == ()
    assert len(compiled.response_head) == 1
    head, exchange = answer(compiled)
    assert head.get(b"content-encoding") == b"gzip"
    assert head.get_all(b"vary") == [b"Accept-Encoding"]
    assert exchange.transform is not None


def test_behind_steps_that_rewrite_other_headers_it_still_runs_late() -> None:
    steps = (COMPRESS, OTHER, {"ipAllowList": {"sourceRange": ["0.0.0.0/0"]}})
    compiled = chain(*steps)
    assert compiled.outcome == () and len(compiled.request) == 2  # not compress: the others
    steps = (COMPRESS, {"rateLimit": {"average": 100}}, {"stripPrefix": {"prefixes": ["/x"]}})
    assert chain(*steps).outcome == ()


def test_a_later_rewrite_of_accept_encoding_is_not_seen_as_in_traefik() -> None:
    compiled = chain(COMPRESS, NO_GZIP)
    assert len(compiled.request) == 2 and len(compiled.outcome) == 1  # decided at the request
    head, exchange = answer(compiled)
    assert head.get(b"content-encoding") == b"gzip"  # what the client sent, not "identity"
    assert exchange.head.get(b"accept-encoding") == b"identity"  # what the backend got


def test_an_earlier_rewrite_is_seen() -> None:
    head, _ = answer(chain(NO_GZIP, COMPRESS))
    assert head.get(b"content-encoding") is None
    assert head.get(b"vary") is None  # identity is none of its encodings: nothing varies


def test_small_head_and_refused_answers_are_left_alone_either_way() -> None:
    for compiled in (chain(COMPRESS), chain(COMPRESS, NO_GZIP)):
        small, _ = answer(compiled, length=b"13")
        assert small.get(b"content-encoding") is None
        assert small.get(b"vary") == b"Accept-Encoding"
        edge, _ = answer(compiled, length=b"1023")
        assert edge.get(b"content-encoding") is None
        assert answer(compiled, length=b"1024")[0].get(b"content-encoding") == b"gzip"
        head, exchange = answer(compiled, method=b"HEAD")
        assert head.get(b"vary") is None and exchange.transform is None
        none, _ = answer(compiled, accept=b"br;q=0, gzip;q=0")
        assert none.get(b"content-encoding") is None


def replied(compiled: Chain) -> tuple[Reply, Exchange]:
    head = RequestHead(True)
    head.add(b"Host", b"app.test")
    head.add(b"Accept-Encoding", b"gzip")
    exchange = Exchange(head, 0.0, ipaddress.ip_address("127.0.0.1"))
    exchange.method_b, exchange.target, exchange.chain = b"GET", b"/", compiled
    exchange.transform = None
    reply = run_request(compiled.request, exchange)
    assert isinstance(reply, Reply)
    return reply, exchange


def test_a_reply_from_a_step_after_it_is_sent_as_its_headers_say() -> None:
    # A small one (ipAllowList's 403) under minResponseBodyBytes: not encoded, as Traefik's
    # writer leaves it; a large one: its body encoded, not only labelled so.
    allow = {"ipAllowList": {"sourceRange": ["10.0.0.0/8"]}}
    for compiled in (chain(COMPRESS, allow), chain(COMPRESS, NO_GZIP, allow)):
        reply, exchange = replied(compiled)
        assert (reply.status, reply.body) == (403, b"Forbidden")
        assert dict(reply.headers).get(b"Content-Encoding") is None
        assert dict(reply.headers)[b"Vary"] == b"Accept-Encoding"
    large = Reply(200, ((b"Content-Type", b"text/plain"),), b"words " * 1000)
    for compiled in (chain(COMPRESS), chain(COMPRESS, NO_GZIP)):
        reply, exchange = replied(ending_with(compiled, lambda exchange: large))
        assert dict(reply.headers)[b"Content-Encoding"] == b"gzip"
        assert gzip.decompress(reply.body) == large.body
        assert exchange.transform is None  # the reply is encoded whole: nothing streams
