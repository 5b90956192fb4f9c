"""addPrefix: the prefix added to the path and its escaped form (expected values: Traefik
3.7.15 on the same requests)."""

from __future__ import annotations

import pytest

from proxynow.config.middlewares import Middleware
from tests.unit.edge.http.middlewares.support import run

SPEC = {"addPrefix": {"prefix": "/pre"}}


@pytest.mark.parametrize(
    ("target", "upstream"),
    [
        (b"/add", b"/pre/add"),
        (b"/add/a%2Fb?x=1", b"/pre/add/a%2Fb?x=1"),
        (b"/add/%41b%2fc", b"/pre/add/Ab%2Fc"),
        (b"/a/../b", b"/pre/b"),
    ],
)
def test_the_prefix_goes_upstream(target: bytes, upstream: bytes) -> None:
    result, exchange = run(SPEC, target)
    assert result is None
    assert exchange.target == upstream


def test_a_prefix_without_a_slash_still_gives_a_rooted_path() -> None:
    _, exchange = run({"addPrefix": {"prefix": "pre"}}, b"/x")
    assert exchange.target == b"/pre/x"
    assert exchange.path == "/pre/x"  # later steps route by the new path


def test_an_invalid_escape_is_a_400() -> None:
    result, exchange = run(SPEC, b"/a%zz")
    assert result is not None and getattr(result, "status", 0) == 400
    assert exchange.target == b"/a%zz"


def test_an_empty_prefix_is_an_error_on_the_middleware() -> None:
    with pytest.raises(ValueError, match="prefix cannot be empty"):
        Middleware.model_validate({"addPrefix": {"prefix": ""}})
