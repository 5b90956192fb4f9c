"""One dynamic file with every middleware type proxynow applies, each on its own router,
served by real Traefik and by `proxynow run`; the same requests to both; the status, the
headers a client acts on and what the backend received (its request line and the headers
the middlewares set) agree. The per-group tests (test_middlewares_*.py) go deeper into
each type; this one holds them all in one file, as a user's stack does, and fails when a
type is added to the registry without a router here.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import bcrypt
import pytest

from proxynow.edge.http.middlewares.registry import BUILDERS
from tests.support.differential import load_balancer, one_router_each, serving_both
from tests.support.proc import ThreadedServer
from tests.support.rewrite_middlewares import Seen, echo_backend, request

PASSWORD = b"password"
HASH = bcrypt.hashpw(PASSWORD, bcrypt.gensalt(4)).decode()
DIGEST_HA1 = "a556b412e16d6570a4b49f92d6571a5e"  # MD5("user:traefik:password")


def middlewares(echo: str) -> dict[str, Any]:
    return {
        "add": {"addPrefix": {"prefix": "/pre"}},
        "strip": {"stripPrefix": {"prefixes": ["/strip"]}},
        "srx": {"stripPrefixRegex": {"regex": ["/srx/[a-z]+"]}},
        "rep": {"replacePath": {"path": "/replaced"}},
        "rre": {"replacePathRegex": {"regex": "^/rre/(.*)", "replacement": "/r/$1"}},
        "rdr": {"redirectRegex": {"regex": "^http://([^/]+)/rdr/(.*)", "replacement": "/to/$2"}},
        "https": {"redirectScheme": {"scheme": "https", "permanent": True}},
        "enc": {"encodedCharacters": {"allowEncodedSlash": True}},
        "hdr": {
            "headers": {
                "customRequestHeaders": {"X-Added": "a", "X-Gone": ""},
                "customResponseHeaders": {"X-Resp": "r"},
                "accessControlAllowOriginList": ["https://a.test"],
                "frameDeny": True,
            }
        },
        "basic": {"basicAuth": {"users": [f"u:{HASH}"], "removeHeader": True}},
        "digest": {"digestAuth": {"users": [f"user:traefik:{DIGEST_HA1}"]}},
        "fwd": {"forwardAuth": {"address": f"{echo}/auth"}},
        "allow": {"ipAllowList": {"sourceRange": ["127.0.0.1/32"]}},
        "deny": {"ipAllowList": {"sourceRange": ["10.0.0.0/8"]}},
        "flight": {"inFlightReq": {"amount": 10}},
        "rate": {"rateLimit": {"average": 1000, "burst": 100}},
        "gz": {"compress": {"minResponseBodyBytes": 1}},
        "again": {"retry": {"attempts": 2, "initialInterval": "1ms"}},
        "breaker": {"circuitBreaker": {"expression": "NetworkErrorRatio() > 0.5"}},
        "err": {"errors": {"status": ["200"], "service": "echo", "query": "/page/{status}"}},
        "cert": {"passTLSClientCert": {"pem": True}},
        "both": {"chain": {"middlewares": ["strip", "add"]}},
        "buf": {"buffering": {"maxRequestBodyBytes": 1 << 20, "memRequestBodyBytes": 1024}},
        "ctype": {"contentType": {}},
        "gweb": {"grpcWeb": {"allowOrigins": ["https://a.test"]}},
    }


def dynamic(echo: str) -> dict[str, Any]:
    used = middlewares(echo)
    return {
        "http": {
            "routers": one_router_each(used, "echo"),
            "middlewares": used,
            "services": {"echo": load_balancer(echo)},
        }
    }


def basic() -> tuple[str, str]:
    return ("Authorization", "Basic " + base64.b64encode(b"u:" + PASSWORD).decode())


# (method, target, headers): each router's path prefix names its middleware.
REQUESTS: list[tuple[str, str, tuple[tuple[str, str], ...]]] = [
    ("GET", "/add/a", ()),
    ("GET", "/buf/a", ()),
    ("GET", "/ctype/a", ()),
    ("GET", "/strip/a?q=1", ()),
    ("GET", "/srx/abc/d", ()),
    ("GET", "/rep/x", ()),
    ("GET", "/rre/a/b", ()),
    ("GET", "/rdr/a/b", ()),
    ("GET", "/https/p?q=1", ()),
    ("GET", "/enc/a%2Fb", ()),
    ("GET", "/hdr/x", (("X-Gone", "g"), ("Origin", "https://a.test"))),
    ("GET", "/basic", ()),
    ("GET", "/basic", (basic(),)),
    ("GET", "/digest", ()),
    ("GET", "/fwd/x", (("X-Kept", "k"),)),
    ("GET", "/allow", ()),
    ("GET", "/deny", ()),
    ("GET", "/flight", ()),
    ("GET", "/rate", ()),
    ("GET", "/gz", (("Accept-Encoding", "gzip"),)),
    ("GET", "/again", ()),
    ("GET", "/breaker", ()),
    ("GET", "/err/x", ()),
    ("GET", "/cert", (("X-Forwarded-Tls-Client-Cert", "forged"),)),
    ("GET", "/both/strip/a", ()),
    ("GET", "/gweb/plain", (("Origin", "https://a.test"),)),  # not gRPC-Web: untouched
    (
        "OPTIONS",
        "/gweb/Svc/Call",
        (
            ("Origin", "https://a.test"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "x-grpc-web,content-type"),
        ),
    ),
]
# Response headers compared besides Location (comparable()).
COMPARED = ("x-resp", "x-frame-options", "access-control-allow-origin", "content-encoding")


def comparable(seen: Seen) -> tuple[Any, ...]:
    headers = tuple(seen.headers.get(name) for name in COMPARED)
    if seen.headers.get("content-encoding"):  # the compressed echo: its bytes are each side's
        return (seen.status, headers, seen.headers.get("vary"))
    if seen.headers.get("www-authenticate", [""])[0].startswith("Digest"):
        return (seen.status, headers)  # the nonce is each server's own
    return (*seen.comparable(), headers, tuple(seen.headers.get("www-authenticate") or ()))


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, int]]:
    backend: ThreadedServer = echo_backend()
    static = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}}
    try:
        config = dynamic(f"http://{backend.address}")
        with serving_both(tmp_path_factory.mktemp("all"), static, config) as both:
            yield both.ports()
    finally:
        backend.close()


def test_every_applied_type_is_in_the_file() -> None:
    kinds = {next(iter(options)) for options in middlewares("http://x").values()}
    assert kinds == set(BUILDERS)
    prefixes = {target.split("/")[1] for _, target, _ in REQUESTS}
    assert prefixes == set(middlewares("http://x"))


@pytest.mark.parametrize("case", REQUESTS, ids=[f"{m} {t}" for m, t, _ in REQUESTS])
def test_same_as_traefik(
    servers: dict[str, int], case: tuple[str, str, tuple[tuple[str, str], ...]]
) -> None:
    method, target, headers = case
    theirs = request(servers["traefik"], target, method, headers=headers)
    ours = request(servers["proxynow"], target, method, headers=headers)
    assert comparable(ours) == comparable(theirs)
