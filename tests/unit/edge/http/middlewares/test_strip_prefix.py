"""stripPrefix: X-Forwarded-Prefix and the path the backend gets (expected values: Traefik
3.7.15 on the same requests)."""

from __future__ import annotations

from typing import Any

import pytest

from proxynow.config.middlewares import Middleware
from proxynow.edge.http.middlewares.base import BuildContext, Reply
from proxynow.edge.http.middlewares.registry import BUILDERS
from tests.unit.edge.http.middlewares.support import exchange, run

SPEC = {"stripPrefix": {"prefixes": ["/strip/x", "/strip"]}}


@pytest.mark.parametrize(
    ("target", "upstream", "prefix"),
    [
        (b"/strip", b"/", b"/strip"),
        (b"/stripx/y", b"/x/y", b"/strip"),
        (b"/strip/a%2Fb?q=1", b"/a%2Fb?q=1", b"/strip"),
        (b"/strip%2Fa", b"/a", b"/strip"),  # the raw path no longer encodes the path
        (b"/strip/x/z'(b)", b"/z'(b)", b"/strip/x"),  # the first prefix that matches
        (b"/strip/x/../a", b"/a", b"/strip"),  # normalised first
        (b"/strip/a%C3%A9%FF", b"/a%C3%A9%FF", b"/strip"),
    ],
)
def test_stripped(target: bytes, upstream: bytes, prefix: bytes) -> None:
    result, exchange = run(SPEC, target)
    assert result is None
    assert exchange.target == upstream
    assert exchange.head.get_all(b"x-forwarded-prefix") == [prefix]


def test_no_prefix_matches_nothing_changes() -> None:
    result, exchange = run(SPEC, b"/other/strip")
    assert result is None
    assert exchange.target == b"/other/strip"
    assert exchange.head.get(b"x-forwarded-prefix") is None


def test_force_slash_is_accepted_and_ignored_as_in_v3() -> None:
    spec = {"stripPrefix": {"prefixes": ["/a"], "forceSlash": True}}
    _, exchange = run(spec, b"/a")
    assert exchange.target == b"/"


def test_a_decoded_cr_lf_in_the_prefix_is_not_sent() -> None:
    spec = {"stripPrefix": {"prefixes": ["/a\r\n"]}}
    result, _ = run(spec, b"/a%0D%0Ab")
    assert result == Reply(500, (), b"Internal Server Error")


def test_a_repeated_target_is_cut_the_same_way_each_time() -> None:
    # Plain targets are remembered: a second request for one gets the same answer, its
    # own head, and unplain or long targets go through Go's path rules every time.
    middleware = Middleware.model_validate(SPEC)
    step = BUILDERS["stripPrefix"](middleware, BuildContext("r", False, lambda name: None))
    assert step.request is not None
    long = b"/strip/" + b"a" * 600
    cases = [
        (b"/strip/x/y?q", b"/y?q", b"/strip/x", "/y"),
        (b"/other", b"/other", None, None),
        (b"/strip%2Fa", b"/a", b"/strip", "/a"),
        (long, long[6:], b"/strip", long[6:].decode()),
    ]
    for _ in range(3):
        for target, upstream, prefix, path in cases:
            found = exchange(target)
            assert step.request(found) is None
            assert found.target == upstream
            assert found.head.get_all(b"x-forwarded-prefix") == ([prefix] if prefix else [])
            if path is not None:
                assert found.path == path


def test_routers_with_other_prefixes_never_get_each_others_cut() -> None:
    # The memo is the worker's (one bound for every router): a target another stripPrefix
    # cut is cut again by this one's prefixes.
    def hook(prefixes: list[str]) -> Any:
        middleware = Middleware.model_validate({"stripPrefix": {"prefixes": prefixes}})
        step = BUILDERS["stripPrefix"](middleware, BuildContext("r", False, lambda name: None))
        return step.request

    short, long, same = hook(["/a"]), hook(["/a/b"]), hook(["/a"])
    for _ in range(2):
        for request, upstream in ((short, b"/b/c"), (long, b"/c"), (same, b"/b/c")):
            found = exchange(b"/a/b/c")
            assert request(found) is None
            assert found.target == upstream
