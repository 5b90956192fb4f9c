"""digestAuth: the RFC 2617 handshake as go-http-auth checks it, stale and replayed nonces."""

from __future__ import annotations

import hashlib
import re

from proxynow.edge.http.middlewares import digest_auth
from proxynow.edge.http.middlewares.base import Reply, Step

from .support_access import exchange, step

HA1 = hashlib.md5(b"alice:traefik:password").hexdigest()


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def challenge(built: Step) -> dict[str, str]:
    assert built.request is not None
    refused = built.request(exchange())
    assert isinstance(refused, Reply) and refused.status == 401
    value = dict(refused.headers)[b"WWW-Authenticate"].decode()
    assert value.startswith('Digest realm="traefik", nonce="') and 'qop="auth"' in value
    return dict(re.findall(r'(\w+)="?([^",]*)"?', value))


def answer(
    params: dict[str, str], nc: str, password: str = "password", uri: str = "/p?q=1"
) -> bytes:
    ha1 = md5(f"alice:traefik:{password}")
    response = md5(f"{ha1}:{params['nonce']}:{nc}:c0ffee:auth:{md5('GET:' + uri)}")
    return (
        f'Digest username="alice", realm="traefik", nonce="{params["nonce"]}", uri="{uri}", '
        f'algorithm=MD5, qop=auth, nc={nc}, cnonce="c0ffee", response="{response}", '
        f'opaque="{params["opaque"]}"'
    ).encode()


def test_the_handshake_then_a_replay_is_stale() -> None:
    built = step({"digestAuth": {"users": [f"alice:traefik:{HA1}"], "headerField": "X-User"}})
    assert built.request is not None
    params = challenge(built)
    granted = exchange(headers=((b"Authorization", answer(params, "00000001")),))
    assert built.request(granted) is None
    assert granted.head.get(b"x-user") == b"alice"
    replay = built.request(exchange(headers=((b"Authorization", answer(params, "00000001")),)))
    assert isinstance(replay, Reply) and replay.status == 401
    assert dict(replay.headers)[b"WWW-Authenticate"].endswith(b", stale=true")
    assert (
        built.request(exchange(headers=((b"Authorization", answer(params, "00000002")),))) is None
    )


def test_wrong_password_uri_opaque_and_unknown_nonce() -> None:
    built = step({"digestAuth": {"users": [f"alice:traefik:{HA1}"], "removeHeader": True}})
    assert built.request is not None
    params = challenge(built)
    wrong = built.request(exchange(headers=((b"Authorization", answer(params, "1", "nope")),)))
    assert isinstance(wrong, Reply) and b"stale" not in dict(wrong.headers)[b"WWW-Authenticate"]
    other_uri = answer(params, "1", uri="/other")
    assert built.request(exchange(headers=((b"Authorization", other_uri),))) is not None
    prefix = exchange(headers=((b"Authorization", answer(params, "2", uri="/p")),))
    assert built.request(prefix) is None  # a prefix of the path, as go-http-auth allows
    assert prefix.head.get(b"authorization") is None
    forged = dict(params, opaque="other")
    assert built.request(exchange(headers=((b"Authorization", answer(forged, "3")),))) is not None
    unknown = dict(params, nonce="never-issued")
    stale = built.request(exchange(headers=((b"Authorization", answer(unknown, "1")),)))
    assert isinstance(stale, Reply) and dict(stale.headers)[b"WWW-Authenticate"].endswith(b"true")


def test_nonces_are_bounded() -> None:
    nonces = digest_auth.Nonces()
    for index in range(5000):
        nonces.issue(float(index))
    assert len(nonces.clients) <= digest_auth.CLIENTS + digest_auth.TOLERANCE + 1


def test_an_oversized_header_is_refused_unparsed() -> None:
    assert digest_auth.digest_params(b'Digest username="' + b"a" * 1_000_000 + b'"') is None
    assert digest_auth.digest_params(b'Digest username="a"') == {"username": "a"}
