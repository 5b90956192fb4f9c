"""Middlewares set by Docker labels, from a compose file, end to end: `docker-compose up`
of the busybox backend (tests/support/docker.py) with the labels below, a real
`proxynow run` with `providers.docker`, real requests.

The compose file is written as a user writes one: every `$` of the bcrypt hash and of the
redirectRegex replacement doubled (`$$`, docs/middlewares.md "Labels"), so that what is
tested is that compose hands proxynow single `$`s and proxynow reads them. Covered: headers
(maps: custom request and response headers, an empty value removing; lists: CORS origins
and methods), basicAuth (bcrypt), ipAllowList (a sourceRange list), stripPrefix (a
prefixes list), rateLimit, redirectRegex, compress, grpcWeb (an allowOrigins list: its
preflight, answered by the proxy) and buffering (maxResponseBodyBytes)."""

from __future__ import annotations

import base64
import http.client
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import brotli
import pytest
import yaml

from tests.e2e.docker.conftest import Engine, Resources
from tests.support.docker import BIG_TEXT
from tests.support.proc import ProxynowProcess, poll

TIMEOUT = 30.0
PASSWORD = b"s3cret"


def labels(suffix: str, hashed: str) -> dict[str, str]:
    """The labels as a compose file spells them (`$$` for `$`)."""
    routers = {
        "hdr": "hdr",
        "auth": "auth",
        "near": "near",
        "far": "far",
        "strip": "strip",
        "rate": "rate",
        "moved": "moved",
        "squeeze": "squeeze",
        "gweb": "gweb",
        "held": "held",
    }
    found = {f"proxynow.http.routers.{name}.rule": f"Host(`{name}.{suffix}`)" for name in routers}
    found |= {f"proxynow.http.routers.{name}.middlewares": m for name, m in routers.items()}
    m = "proxynow.http.middlewares."
    return found | {
        m + "hdr.headers.customrequestheaders.X-Foo": "bar",
        m + "hdr.headers.customrequestheaders.X-Drop": "",
        m + "hdr.headers.customresponseheaders.X-Resp": "yes",
        m + "hdr.headers.accesscontrolalloworiginlist": "https://a.test, https://b.test",
        m + "hdr.headers.accesscontrolallowmethods": "GET,PUT",
        m + "hdr.headers.accesscontrolmaxage": "600",
        m + "auth.basicauth.users": "alice:" + hashed.replace("$", "$$"),
        m + "auth.basicauth.headerfield": "X-User",
        m + "near.ipallowlist.sourcerange": "10.0.0.0/8, 127.0.0.1/32",
        m + "far.ipallowlist.sourcerange": "10.0.0.0/8, 192.168.0.0/16",
        m + "strip.stripprefix.prefixes": "/api, /v1",
        m + "rate.ratelimit.average": "1",
        m + "rate.ratelimit.period": "1m",
        m + "rate.ratelimit.burst": "2",
        m + "moved.redirectregex.regex": "^http://([^/]+)/old/(.*)",
        m + "moved.redirectregex.replacement": "http://$${1}/new/$${2}",
        m + "moved.redirectregex.permanent": "true",
        m + "squeeze.compress.encodings": "br,gzip",
        m + "squeeze.compress.minresponsebodybytes": "512",
        m + "gweb.grpcweb.alloworigins": "https://a.test, https://b.test",
        m + "held.buffering.maxresponsebodybytes": "1000",
        m + "held.buffering.memresponsebodybytes": "10",
    }


@pytest.fixture(scope="module")
def stack(
    docker_engine: Engine, backend_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """`docker-compose up` of one labelled backend; the hosts' suffix. Removed by `down`
    (and by id, should `down` fail)."""
    resources = Resources(docker_engine, backend_image)
    project = re.sub(r"[^a-z0-9]", "", resources.name("mw").lower())
    suffix = f"{project}.test"
    hashed = bcrypt.hashpw(PASSWORD, bcrypt.gensalt(5)).decode()
    assert "$" in hashed
    compose = {
        "version": "2.4",
        "services": {
            "app": {
                "image": backend_image,
                "labels": {"proxynow.test": docker_engine.prefix, **labels(suffix, hashed)},
            }
        },
    }
    directory: Path = tmp_path_factory.mktemp("compose")
    (directory / "docker-compose.yml").write_text(yaml.safe_dump(compose))
    command = ["docker-compose", "-p", project, "-f", str(directory / "docker-compose.yml")]
    try:
        subprocess.run([*command, "up", "-d"], check=True, capture_output=True, timeout=120)
        ids = subprocess.run([*command, "ps", "-q"], check=True, capture_output=True, text=True)
        resources.containers.extend(ids.stdout.split())
        for network in docker_engine.client.networks.list(names=[f"{project}_default"]):
            resources.networks.append(network.id)
        yield suffix
    finally:
        subprocess.run([*command, "down", "--remove-orphans"], capture_output=True, timeout=120)
        resources.cleanup()


Answer = tuple[int, http.client.HTTPMessage, bytes]


def ask(
    proxy: ProxynowProcess,
    host: str,
    path: str = "/cgi-bin/headers",
    headers: dict[str, str] | None = None,
    method: str = "GET",
) -> Answer:
    connection = http.client.HTTPConnection("127.0.0.1", proxy.ports["web"], timeout=10)
    try:
        connection.request(method, path, headers={"Host": host, **(headers or {})})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def served(proxy: ProxynowProcess, stack: str) -> tuple[ProxynowProcess, str]:
    for name in ("hdr", "auth", "near", "far", "strip", "moved", "squeeze", "held"):
        poll(lambda n=name: ask(proxy, f"{n}.{stack}")[0] != 404, TIMEOUT, f"router {name}")
    return proxy, stack


def cgi(body: bytes) -> dict[str, str]:
    lines = body.decode().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def test_headers_maps_and_lists(served: tuple[ProxynowProcess, str]) -> None:
    proxy, suffix = served
    status, headers, body = ask(
        proxy, f"hdr.{suffix}", headers={"Origin": "https://b.test", "X-Drop": "x"}
    )
    seen = cgi(body)
    assert status == 200
    assert seen["HTTP_X_FOO"] == "bar" and "HTTP_X_DROP" not in seen
    assert headers["X-Resp"] == "yes"
    assert headers["Access-Control-Allow-Origin"] == "https://b.test"
    status, headers, _ = ask(
        proxy,
        f"hdr.{suffix}",
        method="OPTIONS",
        headers={"Origin": "https://a.test", "Access-Control-Request-Method": "PUT"},
    )
    assert status == 200
    assert headers["Access-Control-Allow-Methods"] == "GET,PUT"
    assert headers["Access-Control-Max-Age"] == "600"
    assert headers["Access-Control-Allow-Origin"] == "https://a.test"


def test_basic_auth_with_a_bcrypt_hash_from_compose(served: tuple[ProxynowProcess, str]) -> None:
    proxy, suffix = served
    assert ask(proxy, f"auth.{suffix}")[0] == 401
    good = base64.b64encode(b"alice:" + PASSWORD).decode()
    status, _, body = ask(proxy, f"auth.{suffix}", headers={"Authorization": f"Basic {good}"})
    assert status == 200 and cgi(body)["HTTP_X_USER"] == "alice"
    bad = base64.b64encode(b"alice:wrong").decode()
    assert ask(proxy, f"auth.{suffix}", headers={"Authorization": f"Basic {bad}"})[0] == 401


def test_ip_allow_list_source_range_list(served: tuple[ProxynowProcess, str]) -> None:
    proxy, suffix = served
    assert ask(proxy, f"near.{suffix}")[0] == 200
    assert ask(proxy, f"far.{suffix}")[0] == 403


def test_strip_prefix_prefixes_list(served: tuple[ProxynowProcess, str]) -> None:
    proxy, suffix = served
    for prefix in ("/api", "/v1"):
        status, _, body = ask(proxy, f"strip.{suffix}", path=f"{prefix}/cgi-bin/headers")
        seen = cgi(body)
        assert status == 200
        assert seen["uri"] == "/cgi-bin/headers"
        assert seen["HTTP_X_FORWARDED_PREFIX"] == prefix


def test_rate_limit(served: tuple[ProxynowProcess, str]) -> None:
    proxy, suffix = served
    # One connection: it stays on one worker, and the buckets are per worker
    # (docs/middlewares.md "Access control").
    connection = http.client.HTTPConnection("127.0.0.1", proxy.ports["web"], timeout=10)
    answers = []
    try:
        for _ in range(3):
            connection.request("GET", "/", headers={"Host": f"rate.{suffix}"})
            response = connection.getresponse()
            response.read()
            answers.append((response.status, response.getheader("Retry-After")))
    finally:
        connection.close()
    assert [status for status, _ in answers] == [200, 200, 429]
    assert answers[2][1] is not None


def test_redirect_regex_with_dollars_from_compose(served: tuple[ProxynowProcess, str]) -> None:
    proxy, suffix = served
    status, headers, _ = ask(proxy, f"moved.{suffix}", path="/old/a/b?c=d")
    assert status == 301
    assert headers["Location"] == f"http://moved.{suffix}/new/a/b?c=d"


def test_compress_encodings_list(served: tuple[ProxynowProcess, str]) -> None:
    proxy, suffix = served
    status, headers, body = ask(
        proxy, f"squeeze.{suffix}", path="/big.txt", headers={"Accept-Encoding": "gzip, br"}
    )
    assert status == 200 and headers["Content-Encoding"] == "br"
    assert brotli.decompress(body).decode() == BIG_TEXT
    status, headers, body = ask(
        proxy, f"squeeze.{suffix}", path="/index.html", headers={"Accept-Encoding": "br"}
    )
    assert status == 200 and headers["Content-Encoding"] is None  # under 512 bytes


def test_grpc_web_allow_origins_list(served: tuple[ProxynowProcess, str]) -> None:
    proxy, suffix = served
    asked = {"Access-Control-Request-Method": "POST"}
    asked["Access-Control-Request-Headers"] = "x-grpc-web"
    for origin, allowed in (("https://b.test", True), ("https://c.test", False)):
        status, headers, body = ask(
            proxy, f"gweb.{suffix}", headers={"Origin": origin, **asked}, method="OPTIONS"
        )
        assert (status, body) == (200, b"")
        assert headers["Access-Control-Allow-Origin"] == (origin if allowed else None)


def test_buffering_max_response_body_bytes(served: tuple[ProxynowProcess, str]) -> None:
    proxy, suffix = served
    status, headers, body = ask(proxy, f"held.{suffix}", path="/index.html")
    assert (status, body) == (200, b"hello from busybox\n")
    assert headers["Content-Length"] == str(len(body))
    status, _, body = ask(proxy, f"held.{suffix}", path="/big.txt")  # over 1000 bytes
    assert (status, body) == (500, b"Internal Server Error")
