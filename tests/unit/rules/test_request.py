"""How the data plane canonicalises what matchers read: host, routing path, query, client
address (Traefik's TestRoutingPath / TestEmptyHost behaviour, written for proxynow)."""

from __future__ import annotations

import ipaddress

import pytest

from proxynow.rules import SimpleRequest, canonical_host, parse_query, routing_path
from proxynow.rules.request import clean_path, parse_client_ip

HOSTS = [
    ("example.com", "example.com"),
    ("Example.COM", "example.com"),
    ("example.com:8080", "example.com"),
    ("example.com.", "example.com"),
    ("example.com.:443", "example.com"),
    ("[::1]:8080", "::1"),
    ("[::1]", "::1"),
    ("[2001:DB8::1]", "2001:db8::1"),
    ("::1", "::1"),
    ("127.0.0.1:80", "127.0.0.1"),
    ("", ""),
]


@pytest.mark.parametrize(("raw", "expected"), HOSTS)
def test_canonical_host(raw: str, expected: str) -> None:
    assert canonical_host(raw) == expected


PATHS = [
    ("/", "/"),
    ("/plain/path", "/plain/path"),
    ("/foo%20bar", "/foo bar"),
    ("/%61%62%63", "/abc"),
    ("/a%2Fb", "/a%2Fb"),
    ("/a%2fb", "/a%2Fb"),
    ("/a%3Fb%23c", "/a%3Fb%23c"),
    ("/a%25b", "/a%25b"),
    (
        "/%3A%40%21%24%26%27%28%29%2A%2B%2C%3B%3D%5B%5D",
        "/%3A%40%21%24%26%27%28%29%2A%2B%2C%3B%3D%5B%5D",
    ),
    ("/caf%C3%A9", "/café"),
    ("/%7Euser", "/~user"),
    ("/%2D%2E%5F", "/-._"),
    ("/a/../b", "/b"),
    ("/a/./b", "/a/b"),
    ("//a///b", "/a/b"),
    ("/../a", "/a"),
    ("/a/..", "/"),
    ("/a/b/../", "/a/"),
    ("/a/b/.", "/a/b"),
    ("/a/b//", "/a/b/"),
    ("/%2E%2E/b", "/b"),
    ("/a%2F..%2Fb", "/a%2F..%2Fb"),
    ("/bad%zz", "/bad%zz"),
    ("/end%", "/end%"),
]


@pytest.mark.parametrize(("raw", "expected"), PATHS)
def test_routing_path(raw: str, expected: str) -> None:
    assert routing_path(raw) == expected


def test_clean_path_keeps_root() -> None:
    assert clean_path("/") == "/"
    assert clean_path("/./") == "/"


QUERIES = [
    ("", {}),
    ("a", {"a": [""]}),
    ("a=", {"a": [""]}),
    ("a=1&a=2", {"a": ["1", "2"]}),
    ("a=1;b=2", {"a": ["1"], "b": ["2"]}),
    ("a+b=c+d", {"a b": ["c d"]}),
    ("a=%41%42", {"a": ["AB"]}),
    ("a=%zz&b=1", {"b": ["1"]}),
    ("=x", {"": ["x"]}),
    ("&&a=1&", {"a": ["1"]}),
    ("a=b=c", {"a": ["b=c"]}),
]


@pytest.mark.parametrize(("raw", "expected"), QUERIES)
def test_parse_query(raw: str, expected: dict[str, list[str]]) -> None:
    assert parse_query(raw) == expected


def test_client_ip_parsing() -> None:
    assert parse_client_ip("127.0.0.2") == ipaddress.ip_address("127.0.0.2")
    assert parse_client_ip("::ffff:10.0.0.1") == ipaddress.ip_address("10.0.0.1")
    assert parse_client_ip("fe80::1%eth0") == ipaddress.ip_address("fe80::1")
    assert parse_client_ip("not-an-ip") is None


def test_from_raw_absolute_form_uses_authority() -> None:
    request = SimpleRequest.from_raw("http://A.test:81/x?q=1", host="other.test")
    assert (request.host, request.path, request.query_values("q")) == ("a.test", "/x", ["1"])


def test_from_raw_headers_are_grouped_by_lowercase_name() -> None:
    request = SimpleRequest.from_raw("/", headers=(("X-A", "1"), ("x-a", "2")))
    assert list(request.header_values("x-a")) == ["1", "2"]
    assert list(request.header_values("x-b")) == []
    assert request.query_values("missing") is None
