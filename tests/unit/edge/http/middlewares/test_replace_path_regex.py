"""replacePathRegex: Go's ReplaceAllString on the escaped path (expected values: Traefik
3.7.15 on the same requests), and its bounds."""

from __future__ import annotations

import pytest

from proxynow.edge.http.middlewares.base import Reply
from tests.unit.edge.http.middlewares.support import run

SPEC = {"replacePathRegex": {"regex": "^/rre/(.*)", "replacement": "/r/$1/${1}x"}}


@pytest.mark.parametrize(
    ("target", "upstream", "replaced"),
    [
        (b"/rre/a%2Fb?z", b"/r/a%2Fb/a%2Fbx?z", b"/rre/a%2Fb"),
        (b"/rre/a%20b'c", b"/r/a%20b'c/a%20b'cx", b"/rre/a%20b'c"),
        (b"/rre/%FF", b"/r/%FF/%FFx", b"/rre/%FF"),
    ],
)
def test_rewritten(target: bytes, upstream: bytes, replaced: bytes) -> None:
    result, exchange = run(SPEC, target)
    assert result is None
    assert exchange.target == upstream
    assert exchange.head.get_all(b"x-replaced-path") == [replaced]


def test_no_match_no_header() -> None:
    result, exchange = run(SPEC, b"/other")
    assert result is None and exchange.head.get(b"x-replaced-path") is None


def test_a_replacement_growing_past_the_limit_is_a_500() -> None:
    # An empty match at every byte, each replaced by the whole path: bounded, not 4 GiB.
    spec = {"replacePathRegex": {"regex": "x*", "replacement": "${0}" + "abcdefgh" * 64}}
    result, _ = run(spec, b"/" + b"a" * 60000)
    assert isinstance(result, Reply) and result.status == 500


def test_a_result_that_does_not_unescape_is_a_500() -> None:
    result, _ = run({"replacePathRegex": {"regex": "^/(.*)", "replacement": "/%zz$1"}}, b"/a")
    assert isinstance(result, Reply) and result.status == 500
