"""Differential test of the access-control middlewares: one dynamic file served by real
Traefik 3.7 (.venv/bin/traefik) and by `proxynow run`; the same requests to both; the
status, the headers a client acts on, the body of a refusal and what the backend received
must agree (docs/middlewares.md lists the deliberate differences).

The backend answers every request with the headers it received, as JSON, so what a
middleware removed or added on the way is compared too. Digest authentication is driven
by the digest client of `requests`, against each server's own nonces.
"""

from __future__ import annotations

import base64
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import requests
from requests.auth import HTTPDigestAuth

from tests.support.differential import RawRequest, fetch, serving_both

APR1 = "$apr1$saltsalt$yAAkm4libquA.ZWLHbSBq/"  # "password"
SHA1 = "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="  # "password"
DIGEST_HA1 = "a556b412e16d6570a4b49f92d6571a5e"  # MD5("user:traefik:password")
# Headers of the answers compared (Date, Server and Content-Length are each server's own).
COMPARED = ("content-type", "www-authenticate", "retry-after", "content-encoding", "vary")
# What the backend received and the middlewares may change.
RECEIVED = ("authorization", "x-webauth-user", "x-forwarded-for")


class Mirror:
    """A backend answering 200 with the request headers it received as JSON; `/slow`
    waits for `release` (`arrived` is set when one comes in)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.arrived = threading.Event()
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if self.path == "/slow":
                    mirror.arrived.set()
                    mirror.release.wait(30)
                seen = {k.lower(): v for k, v in self.headers.items()}
                body = json.dumps({k: seen.get(k) for k in RECEIVED}).encode()
                self.send_response(200)
                self.send_header("X-Router", "ready")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def dynamic(backend: str, users_file: Path) -> dict[str, Any]:
    hosts = {
        "ready.test": [],
        "allowed.test": ["local"],
        "denied.test": ["elsewhere"],
        "teapot.test": ["not-found"],
        "depth.test": ["by-xff"],
        "excluded.test": ["excluded"],
        "basic.test": ["basic"],
        "realm.test": ["realm"],
        "digest.test": ["digest"],
        "rate.test": ["rate"],
        "inflight.test": ["inflight"],
        "both.test": ["local", "basic"],
        "gzdenied.test": ["gz", "elsewhere"],  # a refusal passes compress on its way out
    }
    routers = {
        host.split(".")[0]: {"rule": f"Host(`{host}`)", "service": "app", "middlewares": names}
        for host, names in hosts.items()
    }
    return {
        "http": {
            "routers": routers,
            "services": {"app": {"loadBalancer": {"servers": [{"url": backend}]}}},
            "middlewares": {
                "local": {"ipAllowList": {"sourceRange": ["127.0.0.1/32", "::1"]}},
                "elsewhere": {"ipAllowList": {"sourceRange": ["10.0.0.0/8"]}},
                "not-found": {
                    "ipAllowList": {"sourceRange": ["10.0.0.0/8"], "rejectStatusCode": 404}
                },
                "by-xff": {"ipAllowList": {"sourceRange": ["1.2.3.4"], "ipStrategy": {"depth": 2}}},
                "excluded": {
                    "ipAllowList": {
                        "sourceRange": ["5.6.7.8"],
                        "ipStrategy": {"excludedIPs": ["1.2.3.0/24"]},
                    }
                },
                "basic": {
                    "basicAuth": {
                        "usersFile": str(users_file),
                        "headerField": "X-WebAuth-User",
                        "removeHeader": True,
                    }
                },
                "realm": {"basicAuth": {"users": [f"bob:{APR1}"], "realm": "Staff only"}},
                "digest": {"digestAuth": {"users": [f"user:traefik:{DIGEST_HA1}"]}},
                "rate": {"rateLimit": {"average": 1, "period": "1m", "burst": 2}},
                "inflight": {"inFlightReq": {"amount": 1}},
                "gz": {"compress": {}},
            },
        }
    }


ENTRYPOINTS = {
    "web": {"address": "127.0.0.1:0", "forwardedHeaders": {"trustedIPs": ["127.0.0.1"]}},
    "web6": {"address": "[::1]:0"},
}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    directory = tmp_path_factory.mktemp("access-diff")
    users_file = directory / "htpasswd"
    fast = bcrypt.hashpw(b"password", bcrypt.gensalt(5)).decode()
    users_file.write_text(f"alice:{fast}\nbob:{APR1}\ncarol:{SHA1}\n")
    mirror = Mirror()
    static = {"entryPoints": ENTRYPOINTS, "log": {"level": "ERROR"}}
    try:
        with serving_both(directory, static, dynamic(mirror.url, users_file)) as served:
            yield {**served.ports(), "mirror": mirror}
    finally:
        mirror.close()


Answer = tuple[int, dict[str, str | None], bytes]


def ask(port: int, host: str, headers: dict[str, str] | None = None, path: str = "/x") -> Answer:
    request = RawRequest(path, host, headers=tuple((headers or {}).items()))
    answer = fetch(port, request, timeout=20)
    return answer.status, {name: answer.first(name) for name in COMPARED}, answer.body


def both(servers: dict[str, Any], host: str, headers: dict[str, str] | None = None) -> Answer:
    traefik = ask(servers["traefik"], host, headers)
    proxynow = ask(servers["proxynow"], host, headers)
    assert proxynow == traefik, f"{host} {headers}"
    return traefik


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


CASES: list[tuple[str, dict[str, str]]] = [
    ("ready.test", {}),
    ("allowed.test", {}),
    ("denied.test", {}),
    ("teapot.test", {}),
    ("depth.test", {}),
    ("depth.test", {"X-Forwarded-For": "1.2.3.4, 9.9.9.9"}),
    ("depth.test", {"X-Forwarded-For": "9.9.9.9, 1.2.3.4"}),
    ("depth.test", {"X-Forwarded-For": "1.2.3.4"}),
    ("excluded.test", {"X-Forwarded-For": "5.6.7.8, 1.2.3.9"}),
    ("excluded.test", {"X-Forwarded-For": "1.2.3.9"}),
    ("basic.test", {}),
    ("basic.test", basic("alice", "password")),
    ("basic.test", basic("bob", "password")),
    ("basic.test", basic("carol", "password")),
    ("basic.test", basic("carol", "wrong")),
    ("basic.test", basic("nobody", "password")),
    ("basic.test", {"Authorization": "basic " + base64.b64encode(b"carol:password").decode()}),
    ("basic.test", {"Authorization": "Basic !!!"}),
    ("basic.test", {"Authorization": "Bearer abc"}),
    ("realm.test", {}),
    ("realm.test", basic("bob", "password")),
    ("both.test", basic("carol", "password")),
    ("gzdenied.test", {}),
    ("gzdenied.test", {"Accept-Encoding": "gzip"}),
]


@pytest.mark.parametrize(("host", "headers"), CASES)
def test_same_answer(servers: dict[str, Any], host: str, headers: dict[str, str]) -> None:
    both(servers, host, headers)


def test_rate_limit(servers: dict[str, Any]) -> None:
    answers = [both(servers, "rate.test") for _ in range(3)]
    assert [status for status, _, _ in answers] == [200, 200, 429]


def test_digest_auth(servers: dict[str, Any]) -> None:
    shapes = []
    for port in (
        servers["traefik"],
        servers["proxynow"],
    ):  # the nonce and opaque differ: compare the rest
        status, headers, body = ask(port, "digest.test")
        challenge = headers.pop("www-authenticate") or ""
        for name in ("nonce", "opaque"):
            start = challenge.index(f'{name}="') + len(name) + 2
            challenge = challenge[:start] + challenge[challenge.index('"', start) :]
        shapes.append((status, headers, body, challenge))
    assert shapes[0] == shapes[1]
    assert (
        shapes[0][3] == 'Digest realm="traefik", nonce="", opaque="", algorithm="MD5", qop="auth"'
    )
    outcomes = {}
    for name in ("traefik", "proxynow"):
        port = servers[name]
        url = f"http://127.0.0.1:{port}/d"
        with requests.Session() as session:
            session.headers["Host"] = "digest.test"
            right = session.get(url, auth=HTTPDigestAuth("user", "password"), timeout=20)
            wrong = session.get(url, auth=HTTPDigestAuth("user", "nope"), timeout=20)
            received = right.json()
            kept = received.pop("authorization") is not None  # its nonce is each server's
            outcomes[name] = (right.status_code, received, kept, wrong.status_code)
    assert outcomes["proxynow"] == outcomes["traefik"]


def test_in_flight_req(servers: dict[str, Any]) -> None:
    mirror: Mirror = servers["mirror"]
    answers = []
    for name in ("traefik", "proxynow"):
        mirror.release.clear()
        mirror.arrived.clear()
        held: list[Answer] = []
        port: int = servers[name]
        slow = threading.Thread(
            target=lambda p=port, into=held: into.append(ask(p, "inflight.test", path="/slow"))
        )
        slow.start()
        assert mirror.arrived.wait(10)
        refused = ask(servers[name], "inflight.test")
        mirror.release.set()
        slow.join(10)
        answers.append((refused, held[0][0], ask(servers[name], "inflight.test")[0]))
    assert answers[0] == answers[1]
    assert answers[0][0][0] == 429
