"""stripPrefixRegex (expected values: Traefik 3.7.15 on the same requests)."""

from __future__ import annotations

import time

import pytest

from proxynow.edge.http.middlewares.base import Reply
from tests.unit.edge.http.middlewares.support import run

SPEC = {"stripPrefixRegex": {"regex": ["/srx/[a-z]+", "/sr2/[^x]*"]}}


@pytest.mark.parametrize(
    ("target", "upstream", "prefix"),
    [
        (b"/srx/abc/def", b"/def", b"/srx/abc"),
        (b"/srx/abc%2Fdef", b"/def", b"/srx/abc"),  # RawPath cut by the decoded length
        (b"/sr2/%C3%A9%FFxq", b"/xq", b"/sr2/\xc3\xa9\xff"),  # a bad byte is one U+FFFD
    ],
)
def test_stripped(target: bytes, upstream: bytes, prefix: bytes) -> None:
    result, exchange = run(SPEC, target)
    assert result is None
    assert exchange.target == upstream
    assert exchange.head.get_all(b"x-forwarded-prefix") == [prefix]


def test_a_match_that_is_not_a_prefix_is_skipped() -> None:
    result, exchange = run({"stripPrefixRegex": {"regex": ["/b"]}}, b"/a/b")
    assert result is None and exchange.target == b"/a/b"


def test_a_decoded_cr_lf_is_not_sent_as_a_header() -> None:
    result, _ = run(SPEC, b"/sr2/a%0d%0aX:%20yxz")
    assert result == Reply(500, (), b"Internal Server Error")


def test_a_pattern_that_would_backtrack_runs_in_linear_time() -> None:
    spec = {"stripPrefixRegex": {"regex": ["^/(a+)+$"]}}
    started = time.perf_counter()
    result, exchange = run(spec, b"/" + b"a" * 60000 + b"!")
    assert result is None and exchange.target.endswith(b"!")
    assert time.perf_counter() - started < 1.0
