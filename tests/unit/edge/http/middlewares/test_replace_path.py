"""replacePath (expected values: Traefik 3.7.15 on the same requests)."""

from __future__ import annotations

from proxynow.edge.http.middlewares.base import Reply
from tests.unit.edge.http.middlewares.support import run

SPEC = {"replacePath": {"path": "/new%2Fpath"}}


def test_the_path_is_replaced_the_query_kept() -> None:
    result, exchange = run(SPEC, b"/rep/old%2Fx?a=b")
    assert result is None
    assert exchange.target == b"/new%2Fpath?a=b"
    assert exchange.head.get_all(b"x-replaced-path") == [b"/rep/old%2Fx"]


def test_the_replaced_path_is_the_normalised_one() -> None:
    _, exchange = run(SPEC, b"/rep/a/../b")
    assert exchange.head.get_all(b"x-replaced-path") == [b"/rep/b"]
    _, exchange = run(SPEC, b"/rep/%0d%0a")
    assert exchange.head.get_all(b"x-replaced-path") == [b"/rep/%0D%0A"]


def test_a_path_that_does_not_unescape_is_a_500() -> None:
    result, _ = run({"replacePath": {"path": "/a%zz"}}, b"/x")
    assert isinstance(result, Reply) and result.status == 500
    assert result.body == b'invalid URL escape "%zz"\n'
