"""A reply from a request hook passes the response-head hooks of the steps before it (and
only those), as an answer from a Traefik middleware passes the response writers around it."""

from __future__ import annotations

import ipaddress

from proxynow.config.middlewares import Middleware
from proxynow.edge.http.exchange import Exchange
from proxynow.edge.http.middlewares import Chain, Defer, Reply, compile_chain, run_request
from proxynow.edge.message.headers import RequestHead

TABLE = {
    "hdr": Middleware.model_validate({"headers": {"customResponseHeaders": {"X-A": "a"}}}),
    "up": Middleware.model_validate({"redirectScheme": {"scheme": "https"}}),
}


def exchange() -> Exchange:
    head = RequestHead(trusted=False)
    head.add(b"Host", b"site.test")
    ex = Exchange(head, 0.0, ipaddress.ip_address("10.0.0.1"))
    ex.method_b, ex.target, ex.host = b"GET", b"/", "site.test"
    return ex


def answer(names: list[str]) -> Reply:
    chain = compile_chain("r", names, TABLE, secure=False)
    assert chain is not None
    ex = exchange()
    ex.chain = chain
    result = run_request(chain.request, ex)
    assert isinstance(result, Reply)
    return result


def test_a_reply_gets_the_headers_of_the_steps_around_it() -> None:
    reply = answer(["hdr", "up"])
    assert reply.status == 302
    assert dict(reply.headers) == {
        b"Location": b"https://site.test/",
        b"X-A": b"a",
    }


def test_a_reply_skips_the_steps_after_it() -> None:
    assert dict(answer(["up", "hdr"]).headers) == {
        b"Location": b"https://site.test/",
    }


def test_a_deferred_reply_passes_them_too() -> None:
    headers = compile_chain("r", ["hdr"], TABLE, secure=False)
    assert headers is not None
    waiting = Defer(lambda resume: resume(Reply(401, ((b"X-Why", b"no"),))))
    # A step after `hdr` whose request hook defers, then answers.
    chain = Chain((lambda _: waiting,), headers.response_head, answered=(1,))
    ex = exchange()
    ex.chain = chain
    deferred = run_request(chain.request, ex)
    assert isinstance(deferred, Defer) and deferred is not waiting
    got: list[Reply | None] = []
    deferred.start(got.append)
    assert got and got[0] is not None
    assert dict(got[0].headers) == {b"X-Why": b"no", b"X-A": b"a"}
