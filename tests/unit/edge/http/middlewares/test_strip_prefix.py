"""stripPrefix: X-Forwarded-Prefix and the path the backend gets (expected values: Traefik
3.7.15 on the same requests)."""

from __future__ import annotations

import pytest

from proxynow.edge.http.middlewares.base import Reply
from tests.unit.edge.http.middlewares.support import run

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
