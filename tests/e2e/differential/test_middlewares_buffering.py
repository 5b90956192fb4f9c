"""buffering against real Traefik: the same file served by both, the same uploads; the
status, the 413's body and what the backend received (length, digest, framing) agree; also
with a buffering nested in a chain behind another one, compress after both."""

from __future__ import annotations

import gzip
import http.client
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support import differential
from tests.support.echo_body import EchoBody
from tests.support.proc import ProxynowProcess, proxynow_factory
from tests.support.traefik import TraefikProcess, traefik_factory

__all__ = ["proxynow_factory", "traefik_factory"]  # the fixtures, re-exported for pytest

LIMIT = 1 << 20


def files(backend: EchoBody) -> tuple[dict[str, Any], dict[str, Any]]:
    static = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}}
    options = {"maxRequestBodyBytes": LIMIT, "memRequestBodyBytes": 4096}
    dynamic = {
        "http": {
            "middlewares": {
                "buffer": {"buffering": options},
                "plain": {"buffering": {"memRequestBodyBytes": 4096}},
            },
            "routers": {
                "b": {"rule": "Host(`b.test`)", "service": "s", "middlewares": ["buffer"]},
                "u": {"rule": "Host(`u.test`)", "service": "s", "middlewares": ["plain"]},
            },
            "services": {"s": {"loadBalancer": {"servers": [{"url": backend.url}]}}},
        }
    }
    return static, dynamic


# (host, name, body pieces, chunked)
REQUESTS: list[tuple[str, str, list[bytes], bool]] = [
    ("b.test", "small", [b"a" * 100], False),
    ("b.test", "spilled", [b"b" * 300_000], False),
    ("b.test", "chunked", [b"c" * 70_000] * 5, True),
    ("b.test", "at-limit", [b"d" * LIMIT], False),
    ("b.test", "declared-over", [b"e" * (LIMIT + 1)], False),
    ("b.test", "chunked-over", [b"f" * 100_000] * 11, True),
    ("u.test", "no-limit", [b"g" * (3 << 20)], False),
    ("b.test", "empty", [], False),
]


def answer(port: int, host: str, name: str, pieces: list[bytes], chunked: bool) -> Any:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        body: Any = iter(pieces) if chunked else b"".join(pieces)
        connection.request(
            "POST", "/" + name, body=body, headers={"Host": host}, encode_chunked=chunked
        )
        response = connection.getresponse()
        data = response.read()
    except (BrokenPipeError, ConnectionResetError) as exc:  # cut while uploading
        return type(exc).__name__
    finally:
        connection.close()
    if response.status == 200:
        return 200, json.loads(data)
    return response.status, response.getheader("Content-Type"), data


@pytest.fixture
def backend() -> Iterator[EchoBody]:
    served = EchoBody()
    yield served
    served.close()


def test_the_same_uploads_as_traefik(
    proxynow_factory: Callable[..., ProxynowProcess],
    traefik_factory: Callable[..., TraefikProcess],
    backend: EchoBody,
) -> None:
    static, dynamic = files(backend)
    traefik = traefik_factory(static, dynamic).ports["web"]
    ours = proxynow_factory(static, dynamic, workers=1).ports["web"]
    differences = differential.unlike(
        REQUESTS, lambda request: answer(traefik, *request), lambda request: answer(ours, *request)
    )
    assert differences == ""


def nested(backend: EchoBody) -> tuple[dict[str, Any], dict[str, Any]]:
    """A buffering inside a chain behind another buffering, with compress after both: the
    tighter inner limit answers, the outer one's body is read again by the inner one."""
    static, dynamic = files(backend)
    middlewares = dynamic["http"]["middlewares"]
    middlewares["tight"] = {"buffering": {"maxRequestBodyBytes": 200_000}}
    middlewares["gz"] = {"compress": {"minResponseBodyBytes": 1}}
    middlewares["inner"] = {"chain": {"middlewares": ["tight", "gz"]}}
    router = {"rule": "Host(`n.test`)", "service": "s", "middlewares": ["buffer", "inner"]}
    dynamic["http"]["routers"]["n"] = router
    return static, dynamic


NESTED: list[tuple[str, str, list[bytes], bool]] = [
    ("n.test", "small", [b"a" * 100], False),
    ("n.test", "spilled", [b"b" * 150_000], False),
    ("n.test", "chunked", [b"c" * 30_000] * 5, True),
    ("n.test", "inner-over", [b"d" * 300_000], False),
    ("n.test", "chunked-inner-over", [b"e" * 100_000] * 3, True),
    ("n.test", "outer-over", [b"f" * (LIMIT + 1)], False),
    ("n.test", "empty", [], False),
]


def gzipped(port: int, host: str, name: str, pieces: list[bytes], chunked: bool) -> Any:
    """`answer`, asking for gzip: the status, the encoding and the decoded body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        body: Any = iter(pieces) if chunked else b"".join(pieces)
        headers = {"Host": host, "Accept-Encoding": "gzip"}
        connection.request("POST", "/" + name, body=body, headers=headers, encode_chunked=chunked)
        response = connection.getresponse()
        data = response.read()
    except (BrokenPipeError, ConnectionResetError) as exc:  # cut while uploading
        return type(exc).__name__
    finally:
        connection.close()
    encoding = response.getheader("Content-Encoding")
    if encoding == "gzip":
        data = gzip.decompress(data)
    if response.status == 200:
        return 200, encoding, json.loads(data)
    return response.status, encoding, response.getheader("Content-Type"), data


def test_nested_buffering_with_compress_as_traefik(
    proxynow_factory: Callable[..., ProxynowProcess],
    traefik_factory: Callable[..., TraefikProcess],
    backend: EchoBody,
) -> None:
    static, dynamic = nested(backend)
    traefik = traefik_factory(static, dynamic).ports["web"]
    ours = proxynow_factory(static, dynamic, workers=1).ports["web"]
    differences = differential.unlike(
        NESTED, lambda request: gzipped(traefik, *request), lambda request: gzipped(ours, *request)
    )
    assert differences == ""
    answered = [gzipped(ours, *request) for request in NESTED[:1] + NESTED[3:4]]
    assert answered[0][:2] == (200, "gzip") and answered[1][0] == 413  # both limits bite
