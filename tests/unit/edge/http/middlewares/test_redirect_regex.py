"""redirectRegex: the URL Traefik reconstructs, the statuses, no-op redirections
(expected values: Traefik 3.7.15 on the same requests)."""

from __future__ import annotations

import pytest

from proxynow.edge.http.middlewares.base import Reply
from tests.unit.edge.http.middlewares.support import run

SPEC = {"redirectRegex": {"regex": "^http://([^/]+)/rdr/(.*)", "replacement": "https://$1/to/$2"}}


@pytest.mark.parametrize(
    ("method", "permanent", "status", "text"),
    [
        (b"GET", False, 302, b"Found"),
        (b"POST", False, 307, b"Temporary Redirect"),
        (b"HEAD", False, 307, b"Temporary Redirect"),  # only GET gets 302 / 301
        (b"GET", True, 301, b"Moved Permanently"),
        (b"PUT", True, 308, b"Permanent Redirect"),
    ],
)
def test_statuses(method: bytes, permanent: bool, status: int, text: bytes) -> None:
    spec = {"redirectRegex": {**SPEC["redirectRegex"], "permanent": permanent}}
    result, _ = run(spec, b"/rdr/q?x=1", method)
    assert result == Reply(status, ((b"Location", b"https://h.test/to/q?x=1"),), text)


def test_the_url_has_the_scheme_of_the_entrypoint() -> None:
    spec = {"redirectRegex": {"regex": "^https://(.*)", "replacement": "http://$1"}}
    assert run(spec, b"/a", secure=False)[0] is None
    result, _ = run(spec, b"/a", secure=True)
    assert result == Reply(302, ((b"Location", b"http://h.test/a"),), b"Found")


def test_a_url_that_does_not_change_goes_on() -> None:
    result, exchange = run({"redirectRegex": {"regex": "^(.*)$", "replacement": "$1"}}, b"/x")
    assert result is None and exchange.target == b"/x"


def test_go_template_rules() -> None:
    spec = {
        "redirectRegex": {
            "regex": "^http://h\\.test/(?P<p>[a-z]+)",
            "replacement": "/$p-$1x-$$-${p}",
        }
    }
    result, _ = run(spec, b"/abc")
    assert result == Reply(302, ((b"Location", b"/abc--$-abc"),), b"Found")


def test_a_control_byte_in_the_new_url_is_a_500() -> None:
    spec = {"redirectRegex": {"regex": "^(.*)$", "replacement": "/a\tb"}}
    result, _ = run(spec, b"/x")
    assert isinstance(result, Reply) and result.status == 500


def test_a_huge_new_url_is_bounded() -> None:
    spec = {"redirectRegex": {"regex": "", "replacement": "${0}" + "x" * 1000}}
    result, _ = run(spec, b"/" + b"a" * 1000)
    assert isinstance(result, Reply) and result.status == 500
