"""basicAuth: the credentials Go reads, the challenge, success rewriting the request, and
bcrypt verified off the loop with a bounded cache of successes."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import bcrypt
import pytest

from proxynow.config.middlewares import Middleware
from proxynow.edge.http.middlewares import basic_auth, compile_chain
from proxynow.edge.http.middlewares.base import Defer, Reply

from .support_access import exchange, step

SHA_USER = "alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="  # password "password"


def auth(user: str, password: str, scheme: str = "Basic") -> tuple[bytes, bytes]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return (b"Authorization", f"{scheme} {token}".encode())


def test_credentials_as_go_reads_them() -> None:
    assert basic_auth.credentials(b"Basic " + base64.b64encode(b"u:p:q")) == (b"u", b"p:q")
    assert basic_auth.credentials(b"bAsIc " + base64.b64encode(b"u:")) == (b"u", b"")
    assert basic_auth.credentials(b"Basic " + base64.b64encode(b"no-colon")) is None
    assert basic_auth.credentials(b"Basic !!!") is None
    assert basic_auth.credentials(b"Bearer x") is None
    assert basic_auth.credentials(None) is None


def test_the_challenge_and_a_success() -> None:
    built = step(
        {"basicAuth": {"users": [SHA_USER], "headerField": "X-User", "removeHeader": True}}
    )
    assert built.request is not None
    refused = built.request(exchange())
    assert isinstance(refused, Reply) and refused.status == 401
    assert (b"WWW-Authenticate", b'Basic realm="traefik"') in refused.headers
    assert refused.body == b"401 Unauthorized\n"
    assert built.request(exchange(headers=(auth("alice", "nope"),))) == refused
    assert built.request(exchange(headers=(auth("bob", "password"),))) == refused
    granted = exchange(headers=(auth("alice", "password"),))
    assert built.request(granted) is None
    assert granted.head.get(b"x-user") == b"alice"
    assert granted.head.get(b"authorization") is None


def test_the_header_stays_unless_removed_and_the_realm_is_configurable() -> None:
    built = step({"basicAuth": {"users": [SHA_USER], "realm": "Staff only"}})
    assert built.request is not None
    kept = exchange(headers=(auth("alice", "password"),))
    assert built.request(kept) is None and kept.head.get(b"authorization") is not None
    refused = built.request(exchange())
    assert isinstance(refused, Reply)
    assert (b"WWW-Authenticate", b'Basic realm="Staff only"') in refused.headers
    with pytest.raises(ValueError):
        step({"basicAuth": {"users": [SHA_USER], "realm": 'a"\r\nX: y'}})


async def test_bcrypt_is_checked_in_the_pool_once_and_then_cached() -> None:
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()
    built = step({"basicAuth": {"users": [f"carol:{hashed}"]}})
    assert built.request is not None
    loop = asyncio.get_running_loop()
    results: list[asyncio.Future[Reply | None]] = []
    for _ in range(3):  # three concurrent requests with the same credentials: one check
        deferred = built.request(exchange(headers=(auth("carol", "s3cret"),)))
        assert isinstance(deferred, Defer)
        done: asyncio.Future[Reply | None] = loop.create_future()
        deferred.start(done.set_result)
        results.append(done)
    assert len(basic_auth.VERIFIER.pending) == 1
    assert [await result for result in results] == [None, None, None]
    assert built.request(exchange(headers=(auth("carol", "s3cret"),))) is None  # cached
    wrong = built.request(exchange(headers=(auth("carol", "guess"),)))
    assert isinstance(wrong, Defer)
    answer: asyncio.Future[Reply | None] = loop.create_future()
    wrong.start(answer.set_result)
    refused = await answer
    assert refused is not None and refused.status == 401
    again = built.request(exchange(headers=(auth("carol", "guess"),)))
    assert isinstance(again, Defer)  # a failure is never cached


async def test_too_many_pending_checks_get_503(monkeypatch: pytest.MonkeyPatch) -> None:
    hashed = bcrypt.hashpw(b"x", bcrypt.gensalt(4)).decode()
    built = step({"basicAuth": {"users": [f"dave:{hashed}"]}})
    assert built.request is not None
    monkeypatch.setattr(basic_auth, "MAX_PENDING", 0)
    busy = built.request(exchange(headers=(auth("dave", "x"),)))
    assert isinstance(busy, Reply) and busy.status == 503


def test_the_cache_is_bounded_and_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(basic_auth, "CACHE_SIZE", 4)
    cache = basic_auth._Cache()
    for index in range(100):
        cache.add(b"%d" % index, 0.0)
    assert len(cache.entries) == 4 and cache.hit(b"99", 1.0)
    assert not cache.hit(b"99", basic_auth.CACHE_TTL + 1.0)


def test_a_middleware_that_cannot_be_built_refuses_every_request(tmp_path: Path) -> None:
    table = {
        "auth": Middleware.model_validate({"basicAuth": {"usersFile": str(tmp_path / "gone")}})
    }
    chain = compile_chain("r", ["auth"], table, secure=False)
    assert chain is not None
    refused = chain.request[0](exchange(headers=(auth("alice", "password"),)))
    assert isinstance(refused, Reply) and refused.status == 500
