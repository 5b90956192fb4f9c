"""Sticky cookies: parsing, Set-Cookie formatting, names and values, choosing a child."""

from __future__ import annotations

import ctypes
import hashlib
import ipaddress
import math
from typing import Any

import pytest

from proxynow.config.dynamic import Cookie, DynamicConfig
from proxynow.config.static import StaticConfig
from proxynow.edge.balance.sticky import (
    Rendezvous,
    StickyCookie,
    cookie_name,
    cookie_value,
    fnv1_64,
    fnv1a_32,
    set_cookie_suffix,
    sha256_value,
    sticky_servers,
)
from proxynow.edge.balance.wrr import Balancer
from proxynow.edge.graph.build import HttpTarget, Server, build_graph
from proxynow.edge.http.exchange import Exchange
from proxynow.edge.message.headers import RequestHead
from proxynow.snapshot import Snapshot

URLS = ["http://10.0.0.1:80", "http://10.0.0.2:80", "http://10.0.0.3:80"]


def request(*headers: tuple[bytes, bytes]) -> Exchange:
    head = RequestHead(False)
    head.add(b"Host", b"app.test")
    for name, value in headers:
        head.add(name, value)
    return Exchange(head, 0.0, None)


# ---------------------------------------------------------------- reading the Cookie header


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([], None),
        ([(b"Cookie", b"lb=abc")], b"abc"),
        ([(b"Cookie", b"a=1; lb=abc; b=2")], b"abc"),
        ([(b"cookie", b"  a=1 ;   lb=abc  ;b=2")], b"abc"),
        ([(b"COOKIE", b'lb="abc"')], b"abc"),
        ([(b"Cookie", b"a=1"), (b"Cookie", b"lb=second")], b"second"),
        ([(b"Cookie", b"lb=first"), (b"Cookie", b"lb=second")], b"first"),
        ([(b"Cookie", b"xlb=no; lbx=no")], None),
        ([(b"Cookie", b"xlb=no; lb=yes")], b"yes"),
        ([(b"X-Cookie", b"lb=no"), (b"Cookies", b"lb=no")], None),
        ([(b"Cookie", b"lb=")], b""),
    ],
)
def test_cookie_value(headers: list[tuple[bytes, bytes]], expected: bytes | None) -> None:
    assert cookie_value(request(*headers).head.get_all(b"cookie"), b"lb") == expected


# ---------------------------------------------------------------- names and values


def test_default_name_is_traefiks_sha1_derivation() -> None:
    # Traefik (pkg/server/cookie): "_" + the hex SHA-1 of "_TRAEFIK_BACKEND_" + the
    # service name, cut to 6 characters in all.
    for service in ("whoami@docker", "app@file", "s"):
        digest = hashlib.sha1(b"_TRAEFIK_BACKEND_" + service.encode()).hexdigest()
        assert cookie_name("", service) == "_" + digest[:5]
    assert len(cookie_name("", "x@file")) == 6


def test_configured_name_is_made_a_token() -> None:
    assert cookie_name("my.lb-1", "s@file") == "my.lb-1"
    assert cookie_name("a b;c=d,é", "s@file") == "a_b_c_d__"


def test_values() -> None:
    url = "http://10.0.0.1:80"
    assert sha256_value(url) == hashlib.sha256(url.encode()).hexdigest()[:16]
    # FNV-1 (not 1a) 64-bit test vectors.
    assert fnv1_64("") == "cbf29ce484222325"
    assert fnv1_64("a") == "af63bd4c8601b7be"
    assert fnv1_64("foobar") == "340d8765a4dda9c2"


# ---------------------------------------------------------------- Set-Cookie


@pytest.mark.parametrize(
    ("options", "suffix"),
    [
        ({}, b"; Path=/"),
        ({"path": ""}, b""),
        ({"path": "/app"}, b"; Path=/app"),
        ({"path": "/a;b\r\nX: y"}, b"; Path=/abX: y"),
        ({"domain": "example.com"}, b"; Path=/; Domain=example.com"),
        ({"domain": ".example.com"}, b"; Path=/; Domain=example.com"),
        ({"domain": "bad domain;"}, b"; Path=/"),
        ({"maxAge": 42}, b"; Path=/; Max-Age=42"),
        ({"maxAge": 0}, b"; Path=/"),
        ({"maxAge": -1}, b"; Path=/; Max-Age=0"),
        ({"httpOnly": True}, b"; Path=/; HttpOnly"),
        ({"secure": True}, b"; Path=/; Secure"),
        ({"sameSite": "none"}, b"; Path=/; SameSite=None"),
        ({"sameSite": "lax"}, b"; Path=/; SameSite=Lax"),
        ({"sameSite": "strict"}, b"; Path=/; SameSite=Strict"),
        (
            {
                "path": "/foo",
                "domain": "foo.com",
                "maxAge": 42,
                "httpOnly": True,
                "secure": True,
                "sameSite": "none",
            },
            b"; Path=/foo; Domain=foo.com; Max-Age=42; HttpOnly; Secure; SameSite=None",
        ),
    ],
)
def test_set_cookie_suffix(options: dict[str, Any], suffix: bytes) -> None:
    assert set_cookie_suffix(Cookie.model_validate(options)) == suffix + b"\r\n"


def test_set_cookie_line() -> None:
    cookie = StickyCookie(Cookie.model_validate({"name": "lb", "httpOnly": True}), "s@file")
    value = sha256_value(URLS[0]).encode()
    assert cookie.line(URLS[0]) == b"Set-Cookie: lb=" + value + b"; Path=/; HttpOnly\r\n"


# ---------------------------------------------------------------- choosing a server


def servers() -> list[Server]:
    return [
        Server(url, "s@file", None, b"", True, b"", 0.0)  # type: ignore[arg-type]
        for url in URLS
    ]


def sticky_lb(weights: tuple[float, ...] = (1, 1, 1)) -> tuple[Any, Balancer[Server]]:
    items = servers()
    balancer = Balancer(list(zip(items, weights, strict=True)), URLS)
    sticky = sticky_servers(balancer, Cookie(name="lb"), "s@file", items)
    return sticky, balancer


def set_cookies(ex: Exchange) -> list[bytes]:
    return [line for line in ex.response_head.split(b"\r\n") if line]


def test_no_cookie_balances_and_sets_one() -> None:
    sticky, _ = sticky_lb()
    seen = []
    for _ in range(3):
        ex = request()
        server = sticky(ex)
        seen.append(server.url)
        assert set_cookies(ex) == [b"Set-Cookie: lb=%s; Path=/" % sha256_value(server.url).encode()]
    assert sorted(seen) == URLS  # still round robin without cookies


def test_a_cookie_keeps_its_server_without_a_new_cookie() -> None:
    sticky, _ = sticky_lb()
    value = sha256_value(URLS[1]).encode()
    for _ in range(5):
        ex = request((b"Cookie", b"other=1; lb=" + value))
        assert sticky(ex).url == URLS[1]
        assert ex.response_head == b""


@pytest.mark.parametrize("form", ["raw", "fnv", "double fnv"])
def test_old_cookie_forms_are_honoured_and_rewritten(form: str) -> None:
    sticky, _ = sticky_lb()
    value = {"raw": URLS[2], "fnv": fnv1_64(URLS[2]), "double fnv": fnv1_64(fnv1_64(URLS[2]))}
    ex = request((b"Cookie", b"lb=" + value[form].encode()))
    assert sticky(ex).url == URLS[2]
    assert set_cookies(ex) == [b"Set-Cookie: lb=%s; Path=/" % sha256_value(URLS[2]).encode()]


def test_unknown_cookie_is_rebalanced_with_a_new_cookie() -> None:
    sticky, _ = sticky_lb()
    ex = request((b"Cookie", b"lb=0123456789abcdef"))
    server = sticky(ex)
    assert set_cookies(ex) == [b"Set-Cookie: lb=%s; Path=/" % sha256_value(server.url).encode()]


def test_cookie_of_a_down_server_is_rebalanced() -> None:
    sticky, balancer = sticky_lb()
    balancer.set_down(frozenset({URLS[0]}))
    value = sha256_value(URLS[0]).encode()
    for _ in range(4):
        ex = request((b"Cookie", b"lb=" + value))
        server = sticky(ex)
        assert server.url != URLS[0]
        assert set_cookies(ex) == [b"Set-Cookie: lb=%s; Path=/" % sha256_value(server.url).encode()]
    balancer.set_down(frozenset())
    ex = request((b"Cookie", b"lb=" + value))
    assert sticky(ex).url == URLS[0]
    assert ex.response_head == b""


def test_zero_weight_server_is_never_stuck_to() -> None:
    sticky, _ = sticky_lb((1, 0, 1))
    ex = request((b"Cookie", b"lb=" + sha256_value(URLS[1]).encode()))
    assert sticky(ex).url != URLS[1]
    assert len(set_cookies(ex)) == 1


def test_no_live_server_is_none_without_cookie() -> None:
    sticky, balancer = sticky_lb()
    balancer.set_down(frozenset(URLS))
    ex = request((b"Cookie", b"lb=" + sha256_value(URLS[0]).encode()))
    assert sticky(ex) is None
    assert ex.response_head == b""


# ---------------------------------------------------------------- in the graph


def graph_targets(services: dict[str, Any]) -> dict[str, HttpTarget]:
    routers = {f"r-{name}": {"rule": f"Host(`{name}.test`)", "service": name} for name in services}
    config = DynamicConfig.model_validate({"http": {"routers": routers, "services": services}})
    static = StaticConfig.model_validate({"entryPoints": {"web": {"address": ":80"}}})
    graph = build_graph(Snapshot(version=1, config=config), static)
    table = graph.http["web"]
    targets = {}
    for name in services:
        ex = request()
        ex.host, ex.path = f"{name}.test", "/"
        target = table.match(ex)
        assert target is not None
        targets[name] = target
    return targets


def lb(*urls: str, sticky: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"servers": [{"url": u} for u in urls]}
    if sticky is not None:
        spec["sticky"] = {"cookie": sticky}
    return {"loadBalancer": spec}


def test_graph_gives_sticky_only_to_sticky_trees() -> None:
    targets = graph_targets(
        {
            "plain": lb(*URLS),
            "sticky": lb(*URLS, sticky={}),
            "outer": {"weighted": {"services": [{"name": "plain"}, {"name": "sticky"}]}},
            "mirror": {"mirroring": {"service": "sticky"}},
        }
    )
    assert targets["plain"].sticky is None
    assert targets["sticky"].sticky is not None
    assert targets["outer"].sticky is not None  # a child is sticky
    # A mirroring service is as sticky as its main service: the same server, marked with
    # its mirrors (no mirror here: the marking is all that differs).
    mirror_sticky, main_sticky = targets["mirror"].sticky, targets["sticky"].sticky
    assert mirror_sticky is not None and main_sticky is not None
    ex = request()
    mirrored = mirror_sticky(ex)
    assert mirrored is not None and mirrored.mirroring is not None and mirrored.url in URLS
    assert b"Set-Cookie" in ex.response_head  # the main service's cookie, as without mirrors


def test_nested_weighted_and_load_balancer_each_keep_their_child() -> None:
    targets = graph_targets(
        {
            "a": lb(URLS[0], URLS[1], sticky={"name": "inner_a"}),
            "b": lb(URLS[2], sticky={"name": "inner_b"}),
            "outer": {
                "weighted": {
                    "services": [{"name": "a"}, {"name": "b"}],
                    "sticky": {"cookie": {"name": "outer"}},
                }
            },
        }
    )
    sticky = targets["outer"].sticky
    assert sticky is not None
    ex = request()
    first = sticky(ex)
    assert first is not None
    lines = set_cookies(ex)
    names = [line.split(b"=")[0] for line in lines]
    assert names[0] == b"Set-Cookie: outer"
    assert names[1] in (b"Set-Cookie: inner_a", b"Set-Cookie: inner_b")
    cookie = b"; ".join(line.split(b": ", 1)[1].split(b";")[0] for line in lines)
    for _ in range(6):
        again = request((b"Cookie", cookie))
        assert sticky(again) is first
        assert again.response_head == b""
    child = "a" if first.url in URLS[:2] else "b"
    assert lines[0] == b"Set-Cookie: outer=%s; Path=/" % sha256_value(child).encode()


# ---------------------------------------------------------------- strategy hrw


def reference_hrw(ip: str, urls: list[str], weights: list[float]) -> str:
    """Traefik's hrw written out independently: FNV-1a 32 by its definition, float32 via
    ctypes, the highest score first in order."""
    best, top = "", 0.0
    for url, weight in zip(urls, weights, strict=True):
        h = 2166136261
        for byte in (ip + url).encode():
            h = ((h ^ byte) * 16777619) % 2**32
        fraction = ctypes.c_float(h).value / 2**32
        score = 1 / -math.log(fraction) * weight if 0 < fraction < 1 else 0.0
        if weight > 0 and score > top:
            best, top = url, score
    return best


def test_fnv1a_32_vectors() -> None:
    assert fnv1a_32(b"") == 0x811C9DC5
    assert fnv1a_32(b"a") == 0xE40C292C
    assert fnv1a_32(b"foobar") == 0xBF9CF968
    assert fnv1a_32(b"bar", fnv1a_32(b"foo")) == fnv1a_32(b"foobar")


def client(ip: str) -> Exchange:
    ex = request()
    ex.client_ip = ipaddress.ip_address(ip)
    return ex


IPS = [f"192.0.2.{i}" for i in range(1, 60)] + ["::1", "2001:db8::7"]


@pytest.mark.parametrize("weights", [(1, 1, 1), (1, 5, 2), (3, 0, 1)])
def test_hrw_picks_what_traefik_would(weights: tuple[float, ...]) -> None:
    items = servers()
    balancer = Balancer(list(zip(items, weights, strict=True)), URLS)
    hrw = Rendezvous(balancer, list(zip(items, weights, strict=True)))
    for ip in IPS:
        server = hrw(client(ip))
        assert server is not None
        assert server.url == reference_hrw(ip, URLS, list(weights))
        assert hrw(client(ip)) is server  # the same client, the same server
    spread = {hrw(client(ip)).url for ip in IPS}  # type: ignore[union-attr]
    assert spread == {u for u, w in zip(URLS, weights, strict=True) if w > 0}


def test_hrw_moves_only_the_clients_of_a_down_server() -> None:
    items = servers()
    children = [(s, 1.0) for s in items]
    balancer = Balancer(children, URLS)
    hrw = Rendezvous(balancer, children)
    before = {ip: hrw(client(ip)) for ip in IPS}
    balancer.set_down(frozenset({URLS[0]}))
    for ip, server in before.items():
        after = hrw(client(ip))
        assert after is not None and after.url != URLS[0]
        if server is not None and server.url != URLS[0]:
            assert after is server
    balancer.set_down(frozenset(URLS))
    assert hrw(client("192.0.2.1")) is None


def test_graph_reads_the_request_only_for_hrw() -> None:
    targets = graph_targets(
        {
            "h": {"loadBalancer": {"strategy": "hrw", "servers": [{"url": u} for u in URLS]}},
            "p": {"loadBalancer": {"strategy": "p2c", "servers": [{"url": u} for u in URLS]}},
        }
    )
    sticky = targets["h"].sticky
    assert isinstance(sticky, Rendezvous)
    assert sticky(client("192.0.2.9")).url == reference_hrw("192.0.2.9", URLS, [1, 1, 1])  # type: ignore[union-attr]
    assert targets["p"].sticky is None  # p2c picks without reading the request
