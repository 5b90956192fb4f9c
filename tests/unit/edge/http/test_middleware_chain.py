"""The middleware step interface: compiling a router's chain into phases, chains inside
chains, cycles and unknown references, the registry `check` reads, and a deferring step
resumed by its callback, without a task, through the HTTP/1 front end."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from proxynow.config.dynamic import DynamicConfig
from proxynow.config.middlewares import MIDDLEWARE_TYPES, Middleware
from proxynow.config.static import StaticConfig
from proxynow.control import middleware_support
from proxynow.control.check import check_dynamic, report
from proxynow.control.middleware_support import APPLIED, unsupported_middleware
from proxynow.edge.graph.state import WorkerState
from proxynow.edge.http.exchange import Exchange
from proxynow.edge.http.middlewares import Chain, Defer, Reply, Resume, compile_chain, run_request
from proxynow.edge.http.middlewares.base import BuildContext, RequestHook, Step
from proxynow.edge.http.middlewares.registry import BUILDERS
from proxynow.edge.http1.factory import http_protocol_factory
from proxynow.edge.http1.protocol import EntryPointRuntime
from proxynow.edge.message.headers import RequestHead, ResponseHead
from proxynow.edge.upstream.connection import UpstreamConnection
from proxynow.snapshot import Snapshot

# ---------------------------------------------------------------- test step types

# Steps of a type with no builder yet (addPrefix), registered for a test only: each hook
# records the prefix it was configured with, so the order of the compiled hooks shows.
Calls = list[tuple[str, str]]


def recording(calls: Calls) -> Callable[[Middleware, BuildContext], Step]:
    def build(middleware: Middleware, context: BuildContext) -> Step:
        assert middleware.add_prefix is not None
        tag = middleware.add_prefix.prefix

        def request(exchange: Exchange) -> None:
            calls.append(("request", tag))

        def response_head(exchange: Exchange, status: int, head: ResponseHead) -> None:
            calls.append(("head", tag))

        def response_body(exchange: Exchange, data: bytes, end: bool) -> bytes:
            calls.append(("body", tag))
            return data

        def outcome(exchange: Exchange, now: float) -> None:
            calls.append(("outcome", tag))

        return Step("addPrefix", request, response_head, response_body, outcome)

    return build


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    found: Calls = []
    monkeypatch.setitem(BUILDERS, "addPrefix", recording(found))
    return found


def table(**specs: dict[str, Any]) -> dict[str, Middleware]:
    return {name: Middleware.model_validate(spec) for name, spec in specs.items()}


def tag(prefix: str) -> dict[str, Any]:
    return {"addPrefix": {"prefix": prefix}}


def chain(*members: str) -> dict[str, Any]:
    return {"chain": {"middlewares": list(members)}}


def exchange() -> Exchange:
    head = RequestHead(False)
    head.add(b"Host", b"app.test")
    found = Exchange(head, 0.0, None)
    found.host, found.target, found.method_b = "app.test", b"/p?q=1", b"GET"
    return found


def run_all(compiled: Chain) -> None:
    """Every hook of every phase once, in phase order."""
    ex = exchange()
    for request in compiled.request:
        request(ex)
    for head in compiled.response_head:
        head(ex, 200, ResponseHead())
    for body in compiled.response_body:
        body(ex, b"x", True)
    for outcome in compiled.outcome:
        outcome(ex, 1.0)


# ---------------------------------------------------------------- compiling


def test_no_middleware_means_no_chain() -> None:
    assert compile_chain("r", (), {}, secure=False) is None


def test_hooks_are_gathered_per_phase_in_order(calls: Calls) -> None:
    middlewares = table(a=tag("a"), b=tag("b"))
    compiled = compile_chain("r", ["a", "b"], middlewares, secure=False)
    assert compiled is not None
    phases = (compiled.request, compiled.response_head, compiled.response_body, compiled.outcome)
    assert [len(phase) for phase in phases] == [2, 2, 2, 2]
    run_all(compiled)
    assert calls == [
        ("request", "a"),
        ("request", "b"),
        ("head", "b"),  # innermost first: the outer step writes last, as in Traefik
        ("head", "a"),
        ("body", "a"),
        ("body", "b"),
        ("outcome", "a"),
        ("outcome", "b"),
    ]


def test_a_step_without_a_phase_adds_nothing_to_it() -> None:
    compiled = compile_chain("r", ["up"], table(up={"redirectScheme": {}}), secure=False)
    assert compiled is not None
    assert len(compiled.request) == 1
    assert compiled.response_head == compiled.response_body == compiled.outcome == ()


def test_chains_are_expanded_recursively_in_order(calls: Calls) -> None:
    middlewares = table(
        outer=chain("a", "inner", "d"), inner=chain("b", "deepest"), deepest=chain("c"),
        a=tag("a"), b=tag("b"), c=tag("c"), d=tag("d"),
    )  # fmt: skip
    compiled = compile_chain("r", ["outer"], middlewares, secure=False)
    assert compiled is not None
    for request in compiled.request:
        request(exchange())
    assert calls == [("request", name) for name in "abcd"]


def test_a_chain_referenced_twice_runs_twice(calls: Calls) -> None:
    # As Traefik applies it: only a chain reaching itself is cut, not a repeated one.
    middlewares = table(twice=chain("a"), a=tag("a"), b=tag("b"))
    compiled = compile_chain("r", ["twice", "b", "twice"], middlewares, secure=False)
    assert compiled is not None
    for request in compiled.request:
        request(exchange())
    assert calls == [("request", "a"), ("request", "b"), ("request", "a")]


def test_a_cycle_is_cut_where_it_closes(calls: Calls) -> None:
    middlewares = table(one=chain("a", "two"), two=chain("one", "b", "two"), a=tag("a"), b=tag("b"))
    compiled = compile_chain("r", ["one"], middlewares, secure=False)
    assert compiled is not None
    for request in compiled.request:
        request(exchange())
    assert calls == [("request", "a"), ("request", "b")]


def test_an_unknown_reference_is_logged_and_skipped(
    calls: Calls, caplog: pytest.LogCaptureFixture
) -> None:
    middlewares = table(inner=chain("gone", "a"), a=tag("a"))
    with caplog.at_level(logging.WARNING):
        compiled = compile_chain("r@file", ["missing", "inner"], middlewares, secure=False)
    assert compiled is not None and len(compiled.request) == 1
    assert "router r@file: middleware missing does not exist" in caplog.text
    assert "router r@file: middleware gone does not exist" in caplog.text


def test_a_qualified_reference_finds_an_unqualified_name(calls: Calls) -> None:
    compiled = compile_chain("r", ["a@file"], table(a=tag("a")), secure=False)
    assert compiled is not None and len(compiled.request) == 1


def test_types_without_a_builder_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(BUILDERS, "grpcWeb")  # every type has one now: grpcWeb stands for one
    middlewares = table(strip={"grpcWeb": {"allowOrigins": ["*"]}}, c=chain("strip"))
    assert compile_chain("r", ["strip", "c"], middlewares, secure=False) is None


def test_the_build_context_tells_whether_the_router_is_secure() -> None:
    middlewares = table(up={"redirectScheme": {"scheme": "https"}})
    plain = compile_chain("r", ["up"], middlewares, secure=False)
    secure = compile_chain("r", ["up"], middlewares, secure=True)
    assert plain is not None and secure is not None
    location = (b"Location", b"https://app.test/p?q=1")
    # No Content-Type, as Traefik v3 (tests/e2e/differential/test_middlewares_all.py).
    assert plain.request[0](exchange()) == Reply(302, (location,), b"Found")
    assert secure.request[0](exchange()) is None  # already https: the URL would not change


# ---------------------------------------------------------------- the registry and check


# One valid configuration per registered type: a new builder needs its line here.
REGISTERED_SAMPLES: dict[str, dict[str, Any]] = {
    "basicAuth": {"users": ["u:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="]},
    "buffering": {"maxRequestBodyBytes": 1000},
    "chain": {"middlewares": ["up"]},
    "errors": {"status": ["500-599"], "service": "s", "query": "/{status}"},
    "forwardAuth": {"address": "http://127.0.0.1:9/auth"},
    "headers": {"frameDeny": True},
    "digestAuth": {"users": ["u:traefik:0123456789abcdef0123456789abcdef"]},
    "inFlightReq": {"amount": 3},
    "ipAllowList": {"sourceRange": ["127.0.0.1/32"]},
    "rateLimit": {"average": 100},
    "redirectScheme": {"scheme": "https"},
    "retry": {"attempts": 2},
    "circuitBreaker": {"expression": "NetworkErrorRatio() > 0.5"},
    "compress": {},
    "contentType": {},
    "addPrefix": {"prefix": "/p"},
    "stripPrefix": {"prefixes": ["/x"]},
    "stripPrefixRegex": {"regex": ["/x/[a-z]+"]},
    "replacePath": {"path": "/new"},
    "replacePathRegex": {"regex": "^/x/(.*)", "replacement": "/y/$1"},
    "redirectRegex": {"regex": "^http://a\\.test/(.*)", "replacement": "https://b.test/$1"},
    "encodedCharacters": {"allowEncodedSlash": True},
    "passTLSClientCert": {"pem": True},
    "grpcWeb": {"allowOrigins": ["*"]},
}


def test_the_applied_set_is_the_registry() -> None:
    assert set(REGISTERED_SAMPLES) == set(BUILDERS)
    assert {("http", kind) for kind in BUILDERS} == {pair for pair in APPLIED if pair[0] == "http"}
    for kind in BUILDERS:
        assert kind in MIDDLEWARE_TYPES
        assert unsupported_middleware("http", kind) is None
    for kind in set(MIDDLEWARE_TYPES) - set(BUILDERS):
        found = unsupported_middleware("http", kind)
        assert found is not None and "is not implemented yet" in found[0]


def test_check_accepts_every_registered_type_and_reports_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every type is applied now: grpcWeb stands for one that is not (`strip` below).
    monkeypatch.setattr(
        middleware_support, "APPLIED", middleware_support.APPLIED - {("http", "grpcWeb")}
    )
    lines = ["http:", "  middlewares:", "    up:", "      redirectScheme: {scheme: https}"]
    samples = {kind: options for kind, options in REGISTERED_SAMPLES.items() if kind != "grpcWeb"}
    for kind, options in samples.items():
        lines += [f"    sample-{kind}:", f"      {kind}: {options!r}".replace("'", '"')]
    lines += ["    strip:", '      grpcWeb: {allowOrigins: ["*"]}']
    lines += ["  routers:", "    r:", "      rule: Host(`a.test`)", "      service: s"]
    names = ", ".join(["up", *(f"sample-{kind}" for kind in samples), "strip"])
    lines += [f"      middlewares: [{names}]"]
    lines += ["  services:", "    s:", "      loadBalancer:", "        servers:"]
    lines += ["          - url: http://127.0.0.1:9"]
    (tmp_path / "dynamic").mkdir()
    (tmp_path / "dynamic" / "m.yml").write_text("\n".join(lines) + "\n")
    monkeypatch.chdir(tmp_path)
    static = StaticConfig.model_validate(
        {
            "entryPoints": {"web": {"address": ":80"}},
            "providers": {"file": {"directory": "dynamic"}},
        }
    )
    result = check_dynamic(static)
    text = "\n".join(report(result.issues, result.omitted).lines)
    assert "http.middlewares.strip: middleware type grpcWeb is not implemented yet" in text
    for kind in samples:
        assert f"sample-{kind}" not in text
    assert "middlewares.up" not in text


# ---------------------------------------------------------------- deferring, pure


class Waiting:
    """A step that must wait: it defers and keeps the resume callback for the test."""

    def __init__(self) -> None:
        self.resumes: list[Resume] = []

    def hook(self, exchange: Exchange) -> Defer:
        return Defer(self.resumes.append)


def test_run_request_continues_after_a_resume() -> None:
    waiting, after = Waiting(), []
    hooks: tuple[RequestHook, ...] = (waiting.hook, lambda ex: after.append(ex) or None)
    ex = exchange()
    result = run_request(hooks, ex)
    assert isinstance(result, Defer) and after == []
    outcomes: list[Reply | None] = []
    result.start(outcomes.append)
    assert len(waiting.resumes) == 1 and outcomes == [] and after == []
    waiting.resumes[0](None)
    assert after == [ex] and outcomes == [None]


def test_a_resume_with_a_reply_skips_the_rest() -> None:
    waiting, after = Waiting(), []
    hooks: tuple[RequestHook, ...] = (waiting.hook, lambda ex: after.append(ex) or None)
    result = run_request(hooks, exchange())
    assert isinstance(result, Defer)
    outcomes: list[Reply | None] = []
    result.start(outcomes.append)
    waiting.resumes[0](Reply(401))
    assert outcomes == [Reply(401)] and after == []


def test_two_deferring_steps_resume_in_turn() -> None:
    first, second = Waiting(), Waiting()
    answer = Reply(200, body=b"ok")
    hooks: tuple[RequestHook, ...] = (first.hook, second.hook, lambda ex: answer)
    result = run_request(hooks, exchange())
    assert isinstance(result, Defer)
    outcomes: list[Reply | None] = []
    result.start(outcomes.append)
    first.resumes[0](None)
    assert outcomes == [] and len(second.resumes) == 1
    second.resumes[0](None)
    assert outcomes == [answer]


# ---------------------------------------------------------------- deferring, through HTTP/1

REQUEST = b"GET /x HTTP/1.1\r\nHost: app.test\r\nUser-Agent: t\r\n\r\n"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class Transport:
    """An in-memory asyncio transport keeping what is written."""

    def __init__(self, peer: tuple[str, int]) -> None:
        self.peer = peer
        self.data = b""
        self.closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.peer if name == "peername" else default

    def write(self, data: bytes) -> None:
        self.data += data

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    abort = close

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def get_write_buffer_size(self) -> int:
        return 0

    def can_write_eof(self) -> bool:
        return False


def served(waiting: Waiting) -> tuple[Any, Transport, Transport, UpstreamConnection]:
    """A client connection on a router whose only middleware defers (`waiting`), and the
    one pooled upstream connection it will be forwarded on."""
    config = DynamicConfig.model_validate(
        {
            "http": {
                "middlewares": {"auth@t": {"forwardAuth": {"address": "http://127.0.0.1:9"}}},
                "routers": {
                    "r@t": {"rule": "Host(`app.test`)", "service": "s@t", "middlewares": ["auth@t"]}
                },
                "services": {"s@t": {"loadBalancer": {"servers": [{"url": "http://127.0.0.1:9"}]}}},
            }
        }
    )
    static = StaticConfig.model_validate({"entryPoints": {"web": {"address": ":80"}}})
    state = WorkerState(tick_interval=1.0)
    state.load(Snapshot(version=1, config=config), static)
    client = http_protocol_factory(state, EntryPointRuntime("web"))()
    client_transport = Transport(("127.0.0.1", 40000))
    client.connection_made(client_transport)
    (pool,) = state.resources.pools.pools.values()
    upstream = UpstreamConnection(pool)
    upstream_transport = Transport(("127.0.0.1", 9))
    upstream.connection_made(upstream_transport)  # type: ignore[arg-type]
    pool.release(upstream, 0.0)
    return client, client_transport, upstream_transport, upstream


@pytest.fixture
def waiting(monkeypatch: pytest.MonkeyPatch) -> Waiting:
    step = Waiting()
    monkeypatch.setitem(
        BUILDERS, "forwardAuth", lambda middleware, context: Step("forwardAuth", step.hook)
    )
    return step


async def test_a_deferred_request_is_forwarded_on_resume_without_a_task(waiting: Waiting) -> None:
    client, client_transport, upstream_transport, upstream = served(waiting)
    tasks = asyncio.all_tasks()
    client.data_received(REQUEST)
    assert len(waiting.resumes) == 1
    assert upstream_transport.data == b"" and client_transport.data == b""
    # Resumed from a callback of the loop, as a subrequest's answer would be.
    done = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(lambda: (waiting.resumes[0](None), done.set_result(1)))
    await done
    assert asyncio.all_tasks() == tasks  # no task was started for the request
    assert upstream_transport.data.startswith(b"GET /x HTTP/1.1\r\nHost: app.test\r\n")
    upstream.data_received(RESPONSE)
    assert client_transport.data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert client_transport.data.endswith(b"\r\n\r\nok") and not client_transport.closing
    waiting.resumes[0](None)  # a second resume is ignored
    client.data_received(REQUEST)  # the connection serves the next request
    assert len(waiting.resumes) == 2


async def test_a_deferred_request_is_answered_by_the_resume_reply(waiting: Waiting) -> None:
    client, client_transport, upstream_transport, _ = served(waiting)
    client.data_received(REQUEST)
    waiting.resumes[0](Reply(403, ((b"Content-Type", b"text/plain"),), b"no"))
    assert upstream_transport.data == b""
    assert client_transport.data == (
        b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nno"
    )
    assert not client_transport.closing


async def test_a_resume_after_the_client_left_does_nothing(waiting: Waiting) -> None:
    client, client_transport, upstream_transport, _ = served(waiting)
    client.data_received(REQUEST)
    client.connection_lost(None)
    waiting.resumes[0](None)
    assert upstream_transport.data == b"" and client_transport.data == b""


# ---------------------------------------------------------------- after routing, through HTTP/1


class Observing:
    """A step with a response-head hook (adds a header) and an outcome hook (records)."""

    def __init__(self) -> None:
        self.heads: list[int] = []
        self.outcomes: list[tuple[int, float]] = []

    def head(self, ex: Exchange, status: int, head: ResponseHead) -> None:
        self.heads.append(status)
        head.set(b"X-Seen", b"%d" % status)

    def outcome(self, ex: Exchange, now: float) -> None:
        self.outcomes.append((ex.status, now))


@pytest.fixture
def observing(monkeypatch: pytest.MonkeyPatch) -> Observing:
    step = Observing()
    monkeypatch.setitem(
        BUILDERS,
        "forwardAuth",
        lambda middleware, context: Step(
            "forwardAuth", response_head=step.head, outcome=step.outcome
        ),
    )
    return step


async def test_response_head_hooks_change_what_the_client_gets(observing: Observing) -> None:
    client, client_transport, _, upstream = served(Waiting())
    client.data_received(REQUEST)
    upstream.data_received(RESPONSE)
    assert observing.heads == [200]
    head, _, body = client_transport.data.partition(b"\r\n\r\n")
    assert b"\r\nX-Seen: 200" in head and body == b"ok"


async def test_outcome_hooks_run_once_per_exchange(observing: Observing) -> None:
    client, _, _, upstream = served(Waiting())
    client.data_received(REQUEST)
    assert observing.outcomes == []
    upstream.data_received(RESPONSE)
    assert [status for status, _ in observing.outcomes] == [200]
    client.connection_lost(None)  # the exchange is over: nothing runs again
    assert len(observing.outcomes) == 1


async def test_outcome_hooks_run_when_the_client_leaves_mid_exchange(observing: Observing) -> None:
    client, _, upstream_transport, _ = served(Waiting())
    client.data_received(REQUEST)
    assert upstream_transport.data  # sent upstream, no answer yet
    client.connection_lost(None)
    assert [status for status, _ in observing.outcomes] == [0]
