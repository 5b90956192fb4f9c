"""The path and redirection middlewares through a running `proxynow run` (file provider,
two workers) to a real echo backend on 127.0.0.1: status, headers and body as the client
gets them, and the request line and headers the backend got. The expected values are what
Traefik 3.7.15 does on the same requests (the differential test compares them live:
tests/e2e/differential/test_middlewares_rewrite.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.proc import ProxynowProcess, ThreadedServer, proxynow_factory
from tests.support.rewrite_middlewares import dynamic, echo_backend, request

__all__ = ["proxynow_factory"]  # the fixture, re-exported for pytest

Start = Callable[..., ProxynowProcess]


@pytest.fixture
def backend() -> Iterator[ThreadedServer]:
    with echo_backend() as server:
        yield server


@pytest.fixture
def port(proxynow_factory: Start, backend: ThreadedServer) -> int:
    static = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}}
    proxy = proxynow_factory(static, dynamic(f"http://{backend.address}"))
    found: int = proxy.ports["web"]
    return found


def test_add_prefix(port: int) -> None:
    seen = request(port, "/add/a%2Fb?x=1")
    assert seen.status == 200
    assert seen.start_line == "GET /pre/add/a%2Fb?x=1 HTTP/1.1"
    assert request(port, "/add/%41b%2fc").start_line == "GET /pre/add/Ab%2Fc HTTP/1.1"


def test_strip_prefix(port: int) -> None:
    seen = request(port, "/strip/a%2Fb?q=1", headers=(("X-Forwarded-Prefix", "/evil"),))
    assert seen.status == 200
    assert seen.start_line == "GET /a%2Fb?q=1 HTTP/1.1"
    # The client's own X-Forwarded-Prefix is dropped (an untrusted peer), ours added.
    assert seen.backend_headers == (("X-Forwarded-Prefix", "/strip"),)
    assert request(port, "/strip").start_line == "GET / HTTP/1.1"
    assert request(port, "/strip%2Fa").start_line == "GET /a HTTP/1.1"
    seen = request(port, "/strip/x/z'(b)")
    assert (seen.start_line, seen.backend_headers) == (
        "GET /z'(b) HTTP/1.1",
        (("X-Forwarded-Prefix", "/strip/x"),),
    )


def test_strip_prefix_regex(port: int) -> None:
    seen = request(port, "/srx/abc%2Fdef")
    assert seen.status == 200
    assert seen.start_line == "GET /def HTTP/1.1"
    assert seen.backend_headers == (("X-Forwarded-Prefix", "/srx/abc"),)
    unsent = request(port, "/sr2/a%0d%0aX:%20yxz")  # a CR LF would go into a header
    assert (unsent.status, unsent.body, unsent.start_line) == (500, b"Internal Server Error", None)


def test_replace_path(port: int) -> None:
    seen = request(port, "/rep/old%2Fx?a=b")
    assert seen.status == 200
    assert seen.start_line == "GET /new%2Fpath?a=b HTTP/1.1"
    assert seen.backend_headers == (("X-Replaced-Path", "/rep/old%2Fx"),)


def test_replace_path_regex(port: int) -> None:
    seen = request(port, "/rre/a%2Fb?z")
    assert seen.status == 200
    assert seen.start_line == "GET /r/a%2Fb/a%2Fbx?z HTTP/1.1"
    assert seen.backend_headers == (("X-Replaced-Path", "/rre/a%2Fb"),)


def test_redirect_regex(port: int) -> None:
    seen = request(port, "/rdr/q?x=1")
    assert (seen.status, seen.headers["location"], seen.body) == (
        302,
        ["https://h.test/to/q?x=1"],
        b"Found",
    )
    seen = request(port, "/rdr/q", method="POST", host="h.test:81")
    assert (seen.status, seen.headers["location"]) == (307, ["https://h.test:81/to/q"])
    seen = request(port, "/perm/a/b?c", method="PUT")
    assert (seen.status, seen.headers["location"]) == (308, ["http://other.test/a/b?c"])
    assert request(port, "/perm/x").status == 301
    # A URL the replacement leaves as it was goes on to the service.
    assert request(port, "/same/x").start_line == "GET /same/x HTTP/1.1"


def test_encoded_characters(port: int) -> None:
    assert request(port, "/enc/a%2Fb").start_line == "GET /enc/a%2Fb HTTP/1.1"
    refused = request(port, "/enc/a%3Bb")
    assert (refused.status, refused.body, refused.start_line) == (400, b"", None)
    assert request(port, "/encall/a%2fb").status == 400
    assert request(port, "/encall/a%20b?x=%2F").status == 200


def test_huge_and_malformed_paths(port: int) -> None:
    huge = "/strip/" + "a" * 60000
    seen = request(port, huge)
    assert seen.status == 200 and seen.start_line == f"GET /{'a' * 60000} HTTP/1.1"
    assert request(port, "/strip/%zz").status == 400
    # The proxy still serves after all of it.
    assert request(port, "/add").start_line == "GET /pre/add HTTP/1.1"
