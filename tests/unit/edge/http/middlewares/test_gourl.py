"""Go's URL path fields (Path, RawPath, EscapedPath, RequestURI) and Traefik 3.7's
normalisation, reproduced for the path middlewares."""

from __future__ import annotations

import time

import pytest

from proxynow.edge.http.middlewares.gourl import GoPath, escape, from_target, normalized, unescape


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"/a%41%2fb", b"/aA%2Fb"),  # unreserved decoded, reserved uppercased
        (b"/a/./b//c/../d", b"/a/b/d"),
        (b"/a%2E%2E/b", b"/a../b"),
        (b"/x/", b"/x/"),
        (b"/%zz", b"/%zz"),  # left as it is: unescape refuses it next
    ],
)
def test_normalisation_before_the_middlewares(raw: bytes, expected: bytes) -> None:
    assert normalized(raw) == expected


@pytest.mark.parametrize(
    ("target", "path", "raw", "uri"),
    [
        (b"/a/b?q=1", b"/a/b", b"/a/b", b"/a/b?q=1"),
        (b"/a%2Fb", b"/a/b", b"/a%2Fb", b"/a%2Fb"),
        (b"/a%20b", b"/a b", b"/a%20b", b"/a%20b"),
        (b"/a'b(c)", b"/a'b(c)", b"/a'b(c)", b"/a'b(c)"),  # validEncoded keeps them
        (b"/a{b", b"/a{b", b"/a%7Bb", b"/a%7Bb"),  # Go escapes what it must
        (b"/a?", b"/a", b"/a", b"/a?"),  # ForceQuery
        (b"/%C3%A9%FF", b"/\xc3\xa9\xff", b"/%C3%A9%FF", b"/%C3%A9%FF"),
    ],
)
def test_fields_as_go_parses_a_target(target: bytes, path: bytes, raw: bytes, uri: bytes) -> None:
    go = from_target(target)
    assert go is not None
    assert (go.path, go.raw, go.request_uri()) == (path, raw, uri)


def test_an_invalid_escape_is_refused() -> None:
    assert from_target(b"/a%zz") is None
    assert from_target(b"/a%2") is None
    assert unescape(b"%") is None


def test_a_raw_path_that_no_longer_encodes_the_path_is_re_escaped() -> None:
    # /strip%2Fa stripped of /strip: Path /a, RawPath /%2Fa, which decodes to //a.
    assert GoPath(b"/a", b"/%2Fa", None).request_uri() == b"/a"
    assert GoPath(b"", b"", None).request_uri() == b"/"
    assert escape(b"/a b?#%\x00\xff") == b"/a%20b%3F%23%25%00%FF"
    assert escape(b"/$&+,:;=@-._~") == b"/$&+,:;=@-._~"


@pytest.mark.parametrize("unit", [b"%41", b"%2f", b"a{", b"{", b"%7B", b"a/./"])
def test_a_hostile_64_kib_path_costs_one_pass(unit: bytes) -> None:
    # No Python loop over the bytes, nothing quadratic: a few ms for the largest target.
    target = b"/" + unit * (60000 // len(unit))
    started = time.perf_counter()
    go = from_target(target)
    assert go is not None and go.request_uri()
    assert time.perf_counter() - started < 0.5
