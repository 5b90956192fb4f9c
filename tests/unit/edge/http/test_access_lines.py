"""The access log's fast path (edge/http/access_lines.py) writes, byte for byte, the line the
general formatters (edge/http/access.py) write for the same exchange.

Property-style: a seeded generator makes thousands of exchanges over every field the
lines carry (set and unset), odd bytes in paths, hosts, methods and names (quotes,
backslashes, control characters, `<>&`, U+2028, invalid UTF-8, unicode), huge values,
every status class and 0, retries, aborted requests, filters, TLS with and without a cipher,
IPv4, IPv6 and peer-less clients, keep-alive connections whose version changes, lines
across wall-clock seconds; each is logged by two `AccessLog`s of one configuration, one
on the fast path and one forced onto the general formatters (`fast=False`), with the same
clock, and the two lines must be equal. Run for json, common and genericCLF.
"""

from __future__ import annotations

import json
import random
from typing import Any, cast

import pytest

from proxynow.config.static import AccessLog as AccessLogConfig
from proxynow.edge.core.metrics import WorkerMetrics
from proxynow.edge.http.access import AccessLog
from proxynow.edge.http.exchange import EntryPointRuntime, Exchange
from proxynow.edge.message.headers import RequestHead, ResponseHead
from proxynow.edge.upstream.server import Server

CASES = 2500
# Pieces that stress escaping in Go's json and strconv.Quote, and in CLF.
ODD = [
    '"', "\\", "\n", "\t", "\r", "\x00", "\x01", "\x1f", "\x7f", "<", ">", "&", "\u2028",
    "\u2029", "é", "日本", "😀", "\ufffd", "%", " ", "'", "\x85", "\xa0", "?", "#", ":",
]  # fmt: skip
ODD_BYTES = [b"\xff", b"\xc3", b"\xe2\x80", b"\xed\xa0\x80", b"\x80abc", b"\xf0\x9f\x98"]


class Lines:
    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.dropped = 0
        self.error = ""

    def submit(self, lines: list[str], size: int) -> None:
        self.lines += [line.encode("utf-8", "replace") for line in lines]

    def reopen(self) -> None: ...
    def close(self) -> None: ...


class _SSL:
    def __init__(self, version: str | None, cipher: str | None) -> None:
        self._version, self._cipher = version, cipher

    def version(self) -> str | None:
        return self._version

    def cipher(self) -> tuple[str, str, int] | None:
        return (self._cipher, "TLSv1.2", 128) if self._cipher is not None else None


class Transport:
    def __init__(self, peer: Any, ssl: _SSL | None) -> None:
        self.peer, self.ssl = peer, ssl

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self.peer
        if name == "ssl_object":
            return self.ssl
        return default


class Client:
    """A connection: its own line pieces (`access_peer`) per AccessLog."""

    def __init__(self, entrypoint: EntryPointRuntime, transport: Transport) -> None:
        self.entrypoint = entrypoint
        self.transport = transport
        self.access_peer: Any = None


def _text(rng: random.Random, limit: int = 12) -> str:
    parts = []
    for _ in range(rng.randrange(limit)):
        roll = rng.random()
        if roll < 0.3:
            parts.append(rng.choice(ODD))
        elif roll < 0.35:
            parts.append(chr(rng.randrange(0x20, 0x3000)))
        else:
            parts.append(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789/-._~"))
    return "".join(parts)


def _bytes(rng: random.Random, limit: int = 12) -> bytes:
    raw = _text(rng, limit).encode("utf-8", "surrogatepass")
    if rng.random() < 0.3:
        at = rng.randrange(len(raw) + 1)
        raw = raw[:at] + rng.choice(ODD_BYTES) + raw[at:]
    if rng.random() < 0.02:
        raw *= 2000  # huge
    return raw


def _host(rng: random.Random) -> bytes:
    return rng.choice(
        [
            b"",
            b"a.test",
            b"a.test:8080",
            b"[::1]:81",
            b"[::1]",
            b"[::1]:",
            b"::1",
            b"a.test:",
            b"a:b:c",
            b"\xc3\xa9.test:1",
            _bytes(rng, 8),
            _bytes(rng, 8) + b":" + _bytes(rng, 3),
        ]
    )


def _peer(rng: random.Random) -> Any:
    return rng.choice(
        [
            ("127.0.0.1", rng.randrange(65536)),
            ("::1", rng.randrange(65536), 0, 0),
            ("fe80::1%eth0", 5),
            None,
            "/run/unix.sock",
            ("10.0.0.1",),
        ]
    )


def _ssl(rng: random.Random) -> _SSL | None:
    return rng.choice(
        [
            None,
            None,
            _SSL("TLSv1.3", "TLS_AES_128_GCM_SHA256"),
            _SSL("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256"),
            _SSL("TLSv1.2", None),
            _SSL(None, "weird<&>"),
            _SSL("TLSv1.2", ""),
        ]
    )


def _client_pair(rng: random.Random) -> tuple[Client, Client]:
    name = rng.choice(["web", "websecure", _text(rng, 6) or "e"])
    entrypoint = EntryPointRuntime(name, tls=rng.random() < 0.4)
    transport = Transport(_peer(rng), _ssl(rng))
    return Client(entrypoint, transport), Client(entrypoint, transport)


def _server(rng: random.Random) -> Server:
    url = rng.choice(
        [
            "http://127.0.0.1:18431",
            "https://[::1]:8443/base",
            "h2c://backend:80",
            "http://" + "".join(rng.choice("abc-._~%<&>") for _ in range(8)) + ":1",
            "http://user@x.test/p?q=<&>",
        ]
    )
    service = rng.choice(["s@file", _text(rng, 8), 'q"s@docker'])
    return Server(url, service, cast(Any, None), b"", True, b"", 0.0)


def _origin(rng: random.Random) -> ResponseHead:
    head = ResponseHead()
    head.add(b"Content-Length", b"12")
    if rng.random() < 0.5:
        head.add(b"X-Odd", _bytes(rng, 6) or b"x")
    return head


def _exchange(rng: random.Random, metrics: WorkerMetrics, start: float) -> Exchange:
    head = RequestHead(trusted=False)
    host = _host(rng)
    if host or rng.random() < 0.5:
        head.add(b"Host", host)
    head.add(b"User-Agent", _bytes(rng, 6) or b"curl")
    ex = Exchange(head, start, None)
    ex.method_b = rng.choice(
        [b"GET", b"POST", b"HEAD", b"PATCH", b"M-SEARCH", b"get", b"", b"X<&>", b"\xff\xfe"]
    )
    ex.target = rng.choice([b"/", b"", b"*", b"/a?b=c&d=<e>", _bytes(rng, 20), _bytes(rng, 40)])
    ex.version = rng.choice(["1.1", "1.1", "1.0", "2", "0.9"])
    roll = rng.random()
    ex.status = rng.choice([0, 200, 204, 301, 404, 499, 502, 999, rng.randrange(100, 600)])
    if roll < 0.05:
        ex.status = 0
    ex.bytes_out = rng.choice([0, 12, 1 << 40, rng.randrange(100_000)])
    ex.bytes_in = rng.choice([0, 5, 1 << 33, rng.randrange(10_000)])
    ex.retried = rng.random() < 0.2
    if rng.random() < 0.8:
        router = rng.choice(["r1@file", "app@docker", _text(rng, 10) or "r", "x@internal"])
        ex.stats = metrics.target("web", router, "s@file")
        if rng.random() < 0.8:
            ex.server = _server(rng)
    return ex


def _config(fmt: str, rng: random.Random) -> dict[str, Any]:
    config: dict[str, Any] = {"format": fmt}
    if rng.random() < 0.3:
        config["addInternals"] = True
    if rng.random() < 0.4:  # filters: both paths must keep the same lines
        filters: dict[str, Any] = {}
        if rng.random() < 0.6:
            filters["statusCodes"] = rng.choice([["200"], ["400-599"], ["200", "300-302"]])
        if rng.random() < 0.5:
            filters["retryAttempts"] = True
        if rng.random() < 0.5:
            filters["minDuration"] = rng.choice(["1ms", "1s", "10ms"])
        config["filters"] = filters
    return config


def _clock(times: list[int]) -> Any:
    return lambda: times[0]


@pytest.mark.parametrize("fmt", ["json", "common", "genericCLF"])
@pytest.mark.parametrize("seed", [1, 2])
def test_fast_path_writes_the_general_formatters_line(fmt: str, seed: int) -> None:
    rng = random.Random(f"{fmt}-{seed}")
    for _ in range(8):  # a few logs, each with its own configuration and connections
        config = AccessLogConfig.model_validate(_config(fmt, rng))
        metrics = WorkerMetrics()
        times = [rng.randrange(0, 4_000_000_000) * 1_000_000_000]
        fast_sink, slow_sink = Lines(), Lines()
        fast = AccessLog(config, fast_sink, metrics, clock=_clock(times))
        slow = AccessLog(config, slow_sink, metrics, clock=_clock(times), fast=False)
        assert fast._fast is not None and slow._fast is None
        clients = [_client_pair(rng) for _ in range(4)]
        for _ in range(CASES // 8):
            times[0] += rng.choice([0, 1, 999_999_999, 1_000_000_000, rng.randrange(10**10)])
            fast_client, slow_client = rng.choice(clients)  # keep-alive: pieces reused
            now = rng.uniform(0, 10_000)
            start = rng.choice([now, now - 0.000_000_1, now - rng.uniform(0, 5), now + 1.0])
            if rng.random() < 0.02:
                start = now - 86_400 * 3  # a 3-day tunnel
            ex = _exchange(rng, metrics, start)
            origin = _origin(rng) if rng.random() < 0.6 else None
            abandoned = rng.random() < 0.1
            fast.record(cast(Any, fast_client), ex, now, origin, abandoned=abandoned)
            slow.record(cast(Any, slow_client), ex, now, origin, abandoned=abandoned)
            assert fast_sink.lines == slow_sink.lines, _difference(fast_sink, slow_sink)
            if fmt == "json" and fast_sink.lines:
                json.loads(fast_sink.lines[-1])  # and it is JSON
            fast_sink.lines.clear()
            slow_sink.lines.clear()


def _difference(fast: Lines, slow: Lines) -> str:
    """Where the two lines part (the start of the first difference on each side)."""
    one, two = (fast.lines or [b""])[0], (slow.lines or [b""])[0]
    at = next((i for i, (a, b) in enumerate(zip(one, two, strict=False)) if a != b), 0)
    return f"fast: {one[max(at - 60, 0) : at + 80]!r}\ngeneral: {two[max(at - 60, 0) : at + 80]!r}"


def test_the_general_path_is_taken_when_a_field_is_dropped_or_a_header_kept() -> None:
    metrics = WorkerMetrics()
    kept = {"format": "json", "fields": {"headers": {"defaultMode": "keep"}}}
    dropped = {"format": "json", "fields": {"names": {"ClientHost": "drop"}}}
    for config in (kept, dropped):
        log = AccessLog(AccessLogConfig.model_validate(config), Lines(), metrics)
        assert log._fast is None
    assert AccessLog(AccessLogConfig(format="json"), Lines(), metrics)._fast is not None


def _base_exchange(metrics: WorkerMetrics, server: Server, start: float) -> Exchange:
    head = RequestHead(trusted=False)
    head.add(b"Host", b"app.test")
    ex = Exchange(head, start, None)
    ex.method_b, ex.target, ex.version = b"GET", b"/index.html", "1.1"
    ex.status, ex.bytes_out, ex.bytes_in = 200, 13, 0
    ex.stats = metrics.target("web", "app@file", "app@file")
    ex.server = server
    return ex


def _change(ex: Exchange, field: str, metrics: WorkerMetrics, other: Server) -> None:
    """`ex` with one field another value (a new object, as the next request's would be)."""
    if field == "host":
        ex.head = RequestHead(trusted=False)
        ex.head.add(b"Host", b"other.test:8080")
    elif field == "router":
        ex.stats = metrics.target("web", "other@file", "app@file")
    elif field == "server":
        ex.server = other
    elif field == "no router":
        ex.stats, ex.server = None, None
    else:
        values = {"method": b"POST", "target": b"/a&b", "version": "1.0", "status": 404}
        values |= {"bytes_out": 14, "bytes_in": 5, "retried": True}
        setattr(ex, field.replace("method", "method_b"), values[field])


FIELDS = (
    "host", "router", "server", "no router", "method", "target", "version", "status",
    "bytes_out", "bytes_in", "retried",
)  # fmt: skip


@pytest.mark.parametrize("fmt", ["json", "common"])
def test_a_keep_alive_connections_lines_follow_every_change_of_its_requests(fmt: str) -> None:
    """A connection asking the same again reuses its last line's pieces (the fast path's
    per-connection shape): each request differing from the one before in one field (an
    equal value in a new object, or another value), and back, must still be the general
    path's line, byte for byte."""
    rng = random.Random(fmt)
    metrics = WorkerMetrics()
    times = [1_764_668_350 * 1_000_000_000]
    config = AccessLogConfig(format=fmt)
    fast_sink, slow_sink = Lines(), Lines()
    fast = AccessLog(config, fast_sink, metrics, clock=_clock(times))
    slow = AccessLog(config, slow_sink, metrics, clock=_clock(times), fast=False)
    servers = (_server(rng), _server(rng))
    fast_client, slow_client = _client_pair(rng)
    now = 1000.0
    hits = 0
    for with_origin in (True, False):
        for field in (None, *FIELDS):
            # the base request twice, the changed one twice, the base again
            for changed in (None, None, field, field, None):
                times[0] += rng.randrange(1, 2_000_000_000)
                now += 1.0
                ex = _base_exchange(metrics, servers[0], now - rng.uniform(0, 0.01))
                if changed is not None:
                    _change(ex, changed, metrics, servers[1])
                origin = _origin(rng) if with_origin else None
                shape = getattr(fast_client.access_peer, "shape", None)
                fast.record(cast(Any, fast_client), ex, now, origin)
                slow.record(cast(Any, slow_client), ex, now, origin)
                assert fast_sink.lines == slow_sink.lines, (
                    field,
                    _difference(fast_sink, slow_sink),
                )
                assert len(fast_sink.lines) == 1
                fast_sink.lines.clear()
                slow_sink.lines.clear()
                hits += shape is not None and fast_client.access_peer.shape is shape
    assert fmt != "json" or hits >= 2 * len(FIELDS)  # the pieces were reused
