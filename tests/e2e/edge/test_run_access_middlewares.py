"""The access-control middlewares end to end: a real `proxynow run` (one worker, so that the
per-worker counters are the ones counted) between real clients and a recording backend.

Each router is one middleware: ipAllowList (peer and X-Forwarded-For depth), basicAuth
(bcrypt, apr1 and SHA1 entries from a usersFile; headerField, removeHeader), digestAuth
(answered by the digest client of `requests`), rateLimit, inFlightReq (freed when the client
aborts), and the TCP ipAllowList and inFlightConn. A bcrypt check must not stall a second
client of the same worker.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import http.server
import queue
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import bcrypt
import pytest
import requests
from requests.auth import HTTPDigestAuth

from tests.support.proc import ProxynowProcess, ThreadedServer, poll, start_proxynow

APR1 = "$apr1$saltsalt$yAAkm4libquA.ZWLHbSBq/"  # "password" (openssl passwd -apr1)
SHA1 = "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="  # "password"
SLOW_COST = 12  # about 0.3-1 s a check: long enough to see a stall


class Recording:
    """HTTP/1.1 backend: answers `seen <path>`, keeps every request's headers; `/slow`
    waits for `release` (`arrived` tells when one came in)."""

    def __init__(self) -> None:
        self.heads: queue.Queue[dict[str, str]] = queue.Queue()
        self.release = threading.Event()
        self.arrived = threading.Event()
        backend = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                backend.heads.put({k.lower(): v for k, v in self.headers.items()})
                if self.path.startswith("/slow"):
                    backend.arrived.set()
                    backend.release.wait(30)
                body = f"seen {self.path}".encode()
                self.send_response(200)
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

    def last_head(self) -> dict[str, str]:
        return self.heads.get(timeout=10)

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def echo(conn: socket.socket) -> None:
    while data := conn.recv(65536):
        conn.sendall(data)
    conn.close()


@pytest.fixture(scope="module")
def backend() -> Iterator[Recording]:
    found = Recording()
    yield found
    found.close()


@pytest.fixture(scope="module")
def echo_server() -> Iterator[ThreadedServer]:
    with ThreadedServer(echo) as server:
        yield server


def routers(*pairs: tuple[str, list[str]]) -> dict[str, Any]:
    return {
        host: {
            "rule": f"Host(`{host}`)",
            "service": "app",
            "middlewares": names,
            "entryPoints": ["web"],
        }
        for host, names in pairs
    }


@pytest.fixture(scope="module")
def proxy(
    tmp_path_factory: pytest.TempPathFactory, backend: Recording, echo_server: ThreadedServer
) -> Iterator[ProxynowProcess]:
    directory = tmp_path_factory.mktemp("access")
    slow = bcrypt.hashpw(b"password", bcrypt.gensalt(SLOW_COST)).decode()
    fast = bcrypt.hashpw(b"password", bcrypt.gensalt(4)).decode()
    users_file = directory / "htpasswd"
    users_file.write_text(f"# users\nalice:{fast}\nbob:{APR1}\ncarol:{SHA1}\nslow:{slow}\n")
    digest_ha1 = "a556b412e16d6570a4b49f92d6571a5e"  # MD5("user:traefik:password")
    tcp_router = {"rule": "HostSNI(`*`)", "service": "echo"}
    dynamic = {
        "http": {
            "routers": routers(
                ("open.test", []),
                ("allowed.test", ["local"]),
                ("denied.test", ["elsewhere"]),
                ("depth.test", ["by-xff"]),
                ("basic.test", ["basic"]),
                ("digest.test", ["digest"]),
                ("rate.test", ["rate"]),
                ("inflight.test", ["inflight"]),
                ("alias.test", ["old-name"]),
            ),
            "services": {"app": {"loadBalancer": {"servers": [{"url": backend.url}]}}},
            "middlewares": {
                "local": {"ipAllowList": {"sourceRange": ["127.0.0.1/32"]}},
                "elsewhere": {"ipAllowList": {"sourceRange": ["10.0.0.0/8"]}},
                "old-name": {"ipWhiteList": {"sourceRange": ["10.0.0.0/8"]}},
                "by-xff": {"ipAllowList": {"sourceRange": ["1.2.3.4"], "ipStrategy": {"depth": 1}}},
                "basic": {
                    "basicAuth": {
                        "usersFile": str(users_file),
                        "headerField": "X-WebAuth-User",
                        "removeHeader": True,
                    }
                },
                "digest": {"digestAuth": {"users": [f"user:traefik:{digest_ha1}"]}},
                "rate": {"rateLimit": {"average": 1, "period": "1m", "burst": 2}},
                "inflight": {"inFlightReq": {"amount": 1}},
            },
        },
        "tcp": {
            "routers": {
                "tcp-allow": {
                    **tcp_router,
                    "entryPoints": ["tcpallow"],
                    "middlewares": ["t-local"],
                },
                "tcp-deny": {**tcp_router, "entryPoints": ["tcpdeny"], "middlewares": ["t-far"]},
                "tcp-few": {**tcp_router, "entryPoints": ["tcpfew"], "middlewares": ["t-one"]},
            },
            "services": {"echo": {"loadBalancer": {"servers": [{"address": echo_server.address}]}}},
            "middlewares": {
                "t-local": {"ipAllowList": {"sourceRange": ["127.0.0.1/32"]}},
                "t-far": {"ipAllowList": {"sourceRange": ["10.0.0.0/8"]}},
                "t-one": {"inFlightConn": {"amount": 1}},
            },
        },
    }
    web = {"address": "127.0.0.1:0", "forwardedHeaders": {"trustedIPs": ["127.0.0.1"]}}
    static = {
        "entryPoints": {
            "web": web,
            **{name: {"address": "127.0.0.1:0"} for name in ("tcpallow", "tcpdeny", "tcpfew")},
        },
        "log": {"level": "ERROR"},
    }
    process = start_proxynow(directory, static, dynamic, workers=1)
    yield process
    process.stop()


def get(
    proxy: ProxynowProcess, host: str, path: str = "/", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", proxy.ports["web"], timeout=20)
    try:
        connection.request("GET", path, headers={"Host": host, **(headers or {})})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_ip_allow_list(proxy: ProxynowProcess, backend: Recording) -> None:
    assert get(proxy, "allowed.test")[::2] == (200, b"seen /")
    status, headers, body = get(proxy, "denied.test")
    assert (status, body) == (403, b"Forbidden")
    assert "content-type" not in headers  # as Traefik
    assert get(proxy, "alias.test")[0] == 403  # ipWhiteList, the deprecated alias
    assert get(proxy, "depth.test")[0] == 403  # no X-Forwarded-For: no address at depth 1
    assert get(proxy, "depth.test", headers={"X-Forwarded-For": "1.2.3.4"})[0] == 200
    assert get(proxy, "depth.test", headers={"X-Forwarded-For": "1.2.3.5"})[0] == 403


@pytest.mark.parametrize("user", ["alice", "bob", "carol"])  # bcrypt, apr1, SHA1
def test_basic_auth(proxy: ProxynowProcess, backend: Recording, user: str) -> None:
    status, headers, body = get(proxy, "basic.test")
    assert status == 401 and headers["www-authenticate"] == 'Basic realm="traefik"'
    assert body == b"401 Unauthorized\n"
    assert get(proxy, "basic.test", headers=basic(user, "wrong"))[0] == 401
    while not backend.heads.empty():
        backend.heads.get()
    status, _, body = get(proxy, "basic.test", "/in", headers=basic(user, "password"))
    assert (status, body) == (200, b"seen /in")
    seen = backend.last_head()
    assert seen["x-webauth-user"] == user and "authorization" not in seen


def test_digest_auth_with_a_real_digest_client(proxy: ProxynowProcess) -> None:
    url = f"http://127.0.0.1:{proxy.ports['web']}/d"
    with requests.Session() as session:
        session.headers["Host"] = "digest.test"
        answer = session.get(url, auth=HTTPDigestAuth("user", "password"), timeout=20)
        assert (answer.status_code, answer.content) == (200, b"seen /d")
        wrong = session.get(url, auth=HTTPDigestAuth("user", "nope"), timeout=20)
        assert wrong.status_code == 401
    status, headers, _ = get(proxy, "digest.test")
    assert status == 401 and headers["www-authenticate"].startswith('Digest realm="traefik"')
    assert 'qop="auth"' in headers["www-authenticate"]


def test_rate_limit(proxy: ProxynowProcess) -> None:
    assert get(proxy, "rate.test")[0] == 200
    assert get(proxy, "rate.test")[0] == 200  # burst 2
    status, headers, body = get(proxy, "rate.test")
    assert (status, body) == (429, b"Too Many Requests")
    assert 55 <= int(headers["retry-after"]) <= 60  # one request a minute
    assert headers["x-retry-in"].endswith("s")


def test_in_flight_req_counts_until_the_exchange_ends(
    proxy: ProxynowProcess, backend: Recording
) -> None:
    backend.release.clear()
    backend.arrived.clear()
    results: queue.Queue[int] = queue.Queue()
    first = threading.Thread(target=lambda: results.put(get(proxy, "inflight.test", "/slow")[0]))
    first.start()
    assert backend.arrived.wait(10)
    assert get(proxy, "inflight.test")[0] == 429
    backend.release.set()
    first.join(10)
    assert results.get(timeout=1) == 200
    assert get(proxy, "inflight.test")[0] == 200
    # A client that leaves mid-exchange frees its place too (the outcome hook runs).
    backend.release.clear()
    backend.arrived.clear()
    client = socket.create_connection(("127.0.0.1", proxy.ports["web"]))
    client.sendall(b"GET /slow HTTP/1.1\r\nHost: inflight.test\r\n\r\n")
    assert backend.arrived.wait(10)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    client.close()  # RST
    poll(lambda: get(proxy, "inflight.test")[0] == 200, 10, "the aborted request to be freed")
    backend.release.set()


def test_a_bcrypt_check_does_not_stall_another_client(proxy: ProxynowProcess) -> None:
    finished: list[tuple[str, float]] = []
    started = time.monotonic()

    def slow() -> None:
        status = get(proxy, "basic.test", headers=basic("slow", "password"))[0]
        finished.append((f"slow {status}", time.monotonic() - started))

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.05)  # let the slow request reach the worker first (ordering only)
    status = get(proxy, "open.test")[0]
    finished.append((f"open {status}", time.monotonic() - started))
    thread.join(30)
    assert [name for name, _ in finished] == ["open 200", "slow 200"], finished
    assert finished[0][1] < finished[1][1] / 2, finished


def tcp_echo(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(b"ping")
        try:
            return sock.recv(16)
        except ConnectionResetError:  # closed with "ping" unread: the kernel resets
            return b""


def test_tcp_ip_allow_list(proxy: ProxynowProcess) -> None:
    assert tcp_echo(proxy.ports["tcpallow"]) == b"ping"
    assert tcp_echo(proxy.ports["tcpdeny"]) == b""  # closed without reaching the backend


def test_tcp_in_flight_conn(proxy: ProxynowProcess) -> None:
    port = proxy.ports["tcpfew"]
    held = socket.create_connection(("127.0.0.1", port), timeout=10)
    held.sendall(b"one")
    assert held.recv(16) == b"one"
    assert tcp_echo(port) == b""  # a second connection from the same IP is closed
    held.close()
    poll(lambda: tcp_echo(port) == b"ping", 10, "the held connection to be released")
