"""One dynamic configuration with every path and redirection middleware, the requests
that exercise them, an echo backend and a raw client: shared by the end-to-end test
(tests/e2e/edge/test_middlewares_rewrite.py) and the differential one against Traefik
(tests/e2e/differential/test_middlewares_rewrite.py).

Each router has one middleware and a path prefix named after it; the backend answers
every request 200 with the request head it received as its body, so a test sees what the
client got and what the backend got from one exchange.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from tests.support.differential import parse
from tests.support.proc import ThreadedServer

MIDDLEWARES: dict[str, dict[str, Any]] = {
    "add": {"addPrefix": {"prefix": "/pre"}},
    "strip": {"stripPrefix": {"prefixes": ["/strip/x", "/strip"]}},
    "srx": {"stripPrefixRegex": {"regex": ["/srx/[a-z]+", "/sr2/[^x]*"]}},
    "rep": {"replacePath": {"path": "/new%2Fpath"}},
    "repbad": {"replacePath": {"path": "/a%zz"}},
    "rre": {"replacePathRegex": {"regex": "^/rre/(.*)", "replacement": "/r/$1/${1}x"}},
    "rdr": {
        "redirectRegex": {"regex": "^http://([^/]+)/rdr/(.*)", "replacement": "https://$1/to/$2"}
    },
    "perm": {
        "redirectRegex": {
            "regex": "^http://[^/]+/perm/(?P<rest>.*)",
            "replacement": "http://other.test/${rest}",
            "permanent": True,
        }
    },
    "same": {"redirectRegex": {"regex": "^(.*)$", "replacement": "$1"}},
    "enc": {"encodedCharacters": {"allowEncodedSlash": True}},
    # Every encoding refused (the default); Traefik refuses an empty `encodedCharacters: {}`.
    "encall": {"encodedCharacters": {"allowEncodedSlash": False}},
}
# Router name → (path prefix of its rule, its middleware).
ROUTERS = {
    "add": ("/add", "add"),
    "strip": ("/strip", "strip"),
    "srx": ("/srx", "srx"),
    "sr2": ("/sr2", "srx"),
    "rep": ("/rep", "rep"),
    "repbad": ("/badrep", "repbad"),
    "rre": ("/rre", "rre"),
    "rdr": ("/rdr", "rdr"),
    "perm": ("/perm", "perm"),
    "same": ("/same", "same"),
    "enc": ("/enc", "enc"),
    "encall": ("/encall", "encall"),
}


def dynamic(backend_url: str) -> dict[str, Any]:
    """The dynamic configuration, as a file provider reads it."""
    routers: dict[str, Any] = {
        name: {"rule": f"PathPrefix(`{prefix}`)", "service": "echo", "middlewares": [mw]}
        for name, (prefix, mw) in ROUTERS.items()
    }
    routers["ready"] = {"rule": "Path(`/ready`)", "service": "echo"}
    return {
        "http": {
            "routers": routers,
            "middlewares": MIDDLEWARES,
            "services": {"echo": {"loadBalancer": {"servers": [{"url": backend_url}]}}},
        }
    }


# Headers of the backend's view that depend on the proxy, not on the middleware.
_PROXY_HEADERS = {
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-proto",
    "x-forwarded-server",
    "x-real-ip",
    "accept-encoding",
    "connection",
    "host",
    "content-length",
}


@dataclass(frozen=True, slots=True)
class Seen:
    """A response as the client got it, and the request as the backend got it."""

    status: int
    headers: dict[str, list[str]]  # lower-case names
    body: bytes
    start_line: str | None  # the backend's request line; None: the backend was not reached
    backend_headers: tuple[tuple[str, str], ...]  # the middleware's, in order

    def comparable(self) -> tuple[Any, ...]:
        """What must agree with Traefik: status, Location, Content-Length, the body of a
        local answer, and what the backend got."""
        local_body = self.body if self.start_line is None else b""
        location = self.headers.get("location")
        kind = self.headers.get("content-type") if self.start_line is None else None
        seen = (self.start_line, self.backend_headers)
        return (self.status, location, local_body, kind, *seen)


def echo(connection: socket.socket) -> None:
    """The backend: one request per connection, answered with its head."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return
        data += chunk
    head = data.partition(b"\r\n\r\n")[0]
    connection.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%b" % (len(head), head)
    )


def echo_backend() -> ThreadedServer:
    return ThreadedServer(echo)


def request(
    port: int,
    target: str,
    method: str = "GET",
    host: str = "h.test",
    headers: tuple[tuple[str, str], ...] = (),
) -> Seen:
    """One raw request on a new connection (the target sent as written)."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if method in ("POST", "PUT"):
        lines.append("Content-Length: 0")
    lines.append("Connection: close")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return _parse(data, method)


def _parse(data: bytes, method: str) -> Seen:
    answer = parse(data)
    status, headers, body = answer.status, answer.headers, answer.body
    start_line: str | None = None
    seen: list[tuple[str, str]] = []
    if status == 200 and method != "HEAD" and body.startswith((b"GET ", b"POST ", b"HEAD ")):
        start_line, *received = body.decode("latin-1").split("\r\n")
        for line in received:
            name, _, value = line.partition(":")
            if name.lower() not in _PROXY_HEADERS and name.lower() != "user-agent":
                seen.append((name.strip(), value.strip()))
    return Seen(status, headers, body, start_line, tuple(seen))


# (method, target, request headers): the requests both proxies get in the differential
# test; each exercises one middleware (its path prefix names it).
REQUESTS: list[tuple[str, str, tuple[tuple[str, str], ...]]] = [
    ("GET", "/add", ()),
    ("GET", "/add/a%2Fb?x=1", ()),
    ("GET", "/add/%41b%2fc", ()),
    ("GET", "/strip", ()),
    ("GET", "/stripx/y", ()),
    ("GET", "/strip/a%2Fb?q=1", ()),
    ("GET", "/strip%2Fa", ()),
    ("GET", "/strip/x/z'(b)", ()),
    ("GET", "/strip/x/../a", ()),
    ("GET", "/strip/a%C3%A9%FF", ()),
    ("GET", "/strip/a", (("X-Forwarded-Prefix", "/evil"),)),
    ("GET", "/strip/a{b", ()),
    ("GET", "/strip/" + "a" * 20000, ()),
    ("GET", "/srx/abc/def", ()),
    ("GET", "/srx/abc%2Fdef", ()),
    ("GET", "/srx/ABC", ()),
    ("GET", "/sr2/%C3%A9%FFxq", ()),
    ("GET", "/sr2/a%0d%0aX:%20yxz", ()),
    ("GET", "/rep/old%2Fx?a=b", ()),
    ("GET", "/rep/a%20b", ()),
    ("GET", "/rep/%0d%0a", ()),
    ("GET", "/badrep/x", ()),
    ("GET", "/rre/a%2Fb?z", ()),
    ("GET", "/rre/a%20b'c", ()),
    ("GET", "/rdr/q?x=1", ()),
    ("GET", "/rdr/a{b}", ()),
    ("GET", "/rdr/a%41'b%2f", ()),
    ("GET", "/rdr/x/../y?q=%zz", ()),
    ("POST", "/rdr/q", ()),
    ("HEAD", "/rdr/q", ()),
    ("PUT", "/perm/a/b?c", ()),
    ("GET", "/perm/a%2Fb", ()),
    ("GET", "/same/x", ()),
    ("GET", "/enc/a%2Fb", ()),
    ("GET", "/enc/a%3Bb", ()),
    ("GET", "/enc/a%5c", ()),
    ("GET", "/encall/a%2fb", ()),
    ("GET", "/encall/a%20b?x=%2F", ()),
]
