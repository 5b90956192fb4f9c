"""The shared half of the middleware differential tests: the same files served by real
Traefik (tests/support/traefik.py) and by `proxynow run` (tests/support/proc.py), raw
requests sent to both, and their answers compared.

`serving_both(directory, static, dynamic)` starts both on one static and one dynamic
configuration and stops both by PID; `fetch(port, request)` sends one raw request on a
new connection (the target written as is, `Connection: close`) and reads the answer to
the end; `mismatches(ours, theirs)` names what differs between two mappings, so that a
failure shows proxynow's value next to Traefik's; `unlike(requests, theirs, ours)` sends
each request to Traefik then to proxynow, in order, and names those answered differently.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tests.support.proc import ProxynowProcess, start_proxynow
from tests.support.traefik import TraefikProcess, start_traefik

__all__ = [
    "Answer",
    "Both",
    "RawRequest",
    "fetch",
    "load_balancer",
    "mismatches",
    "one_router_each",
    "serving_both",
    "unlike",
]

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class RawRequest:
    """One request as bytes on the wire will carry it, plus the client source address."""

    target: str
    host: str | None = "h00.example.com"
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    source: str = "127.0.0.1"
    body: bytes | None = None

    def encode(self) -> bytes:
        lines = [f"{self.method} {self.target} HTTP/1.1"]
        if self.host is not None:
            lines.append(f"Host: {self.host}")
        lines.extend(f"{k}: {v}" for k, v in self.headers)
        if self.body is not None:
            lines.append(f"Content-Length: {len(self.body)}")
        lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + (self.body or b"")

    def tagged(self, name: str, value: str) -> RawRequest:
        """The same request with one more header (a test id the backend records)."""
        return RawRequest(
            self.target,
            self.host,
            self.method,
            (*self.headers, (name, value)),
            self.source,
            self.body,
        )


@dataclass(frozen=True, slots=True)
class Answer:
    """A response as the client got it: headers by lower-case name, in order."""

    status: int
    headers: dict[str, list[str]]
    body: bytes

    def picked(self, names: Iterable[str]) -> dict[str, list[str] | None]:
        return {name: self.headers.get(name) for name in names}

    def first(self, name: str) -> str | None:
        values = self.headers.get(name)
        return values[0] if values else None


def parse(data: bytes) -> Answer:
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, list[str]] = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return Answer(int(status_line.split(" ", 2)[1]), headers, body)


def fetch(port: int, request: RawRequest, timeout: float = 10.0) -> Answer:
    """Send `request` to 127.0.0.1:`port` (from its source address) and read to the end."""
    with socket.create_connection(("127.0.0.1", port), timeout, (request.source, 0)) as sock:
        sock.sendall(request.encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return parse(b"".join(chunks))


def mismatches(ours: Mapping[Any, Any], theirs: Mapping[Any, Any]) -> dict[Any, tuple[Any, Any]]:
    """Keys whose values differ: key → (proxynow's, Traefik's)."""
    return {
        key: (ours.get(key), theirs.get(key))
        for key in {*ours, *theirs}
        if ours.get(key) != theirs.get(key)
    }


def unlike(requests: Sequence[R], theirs: Callable[[R], Any], ours: Callable[[R], Any]) -> str:
    """Each request to Traefik, then to proxynow, in order (a backend that counts attempts
    sees them one after the other); one line per request answered differently:
    `request: proxynow's answer != Traefik's`, empty when they all agree."""
    lines = []
    for request in requests:
        expected = theirs(request)
        got = ours(request)
        if got != expected:
            lines.append(f"{request!r}: {got!r} != {expected!r}")
    return "\n".join(lines)


def one_router_each(
    middlewares: Iterable[str], service: str, rule: str = "PathPrefix(`/{name}`)"
) -> dict[str, Any]:
    """A router per middleware, named after it and using it alone, on the `web`
    entrypoint (`rule` formatted with the name)."""
    return {
        name: {
            "rule": rule.format(name=name),
            "service": service,
            "middlewares": [name],
            "entryPoints": ["web"],
        }
        for name in middlewares
    }


def load_balancer(*urls: str) -> dict[str, Any]:
    return {"loadBalancer": {"servers": [{"url": url} for url in urls]}}


@dataclass(frozen=True, slots=True)
class Both:
    traefik: TraefikProcess
    proxynow: ProxynowProcess

    def ports(self, entrypoint: str = "web") -> dict[str, int]:
        """Side name ("traefik", "proxynow") → the port of `entrypoint`."""
        return {
            "traefik": self.traefik.ports[entrypoint],
            "proxynow": self.proxynow.ports[entrypoint],
        }


@contextlib.contextmanager
def serving_both(
    directory: Path, static: dict[str, Any], dynamic: dict[str, Any], workers: int = 1
) -> Iterator[Both]:
    """Real Traefik and `proxynow run` on the same files, both stopped at the end.

    One proxynow worker by default: the per-worker counters (rateLimit, inFlightReq)
    then count as Traefik's single process does."""
    traefik = start_traefik(directory / "traefik", static, dynamic)
    try:
        proxynow = start_proxynow(directory / "proxynow", static, dynamic, workers=workers)
    except BaseException:
        traefik.stop()
        raise
    try:
        yield Both(traefik, proxynow)
    finally:
        proxynow.stop()
        traefik.stop()
