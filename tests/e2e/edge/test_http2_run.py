"""HTTP/2 through a running `proxynow run`: curl over TLS (ALPN h2) and with prior knowledge
(h2c), a graceful drain's GOAWAY, and the default defences (maxConcurrentStreams, a huge
header block) while a second client is served. The raw client is the `h2` library over a
blocking socket; the backend is a real threaded HTTP/1.1 server. Each test runs on both
HTTP/2 codecs (PROXYNOW_H2_CODEC=nghttp2, then h2)."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
import hpack
import pytest
import trustme

from tests.support.h2codecs import CODECS, use_codec
from tests.support.proc import HttpBackend, ProxynowProcess, poll, proxynow_factory
from tests.support.tls import pem_pair

__all__ = ["proxynow_factory"]

Start = Callable[..., ProxynowProcess]


@pytest.fixture(autouse=True, params=CODECS)
def codec(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test on each HTTP/2 codec (libnghttp2's, h2's) of the proxynow it starts."""
    use_codec(monkeypatch, request.param)
    name: str = request.param
    return name


@pytest.fixture
def backend() -> Iterator[HttpBackend]:
    with HttpBackend("b1") as server:
        yield server


def config(
    backend: HttpBackend, directory: Path | None = None, **web: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """`web` (h2c and HTTP/1.1) and, given a directory for the CA, `websecure` with a
    certificate for app.test; one router per entrypoint to `backend`."""
    service = {"loadBalancer": {"servers": [{"url": backend.url}]}}
    routers: dict[str, Any] = {
        "plain": {"rule": "PathPrefix(`/`)", "entryPoints": ["web"], "service": "app"}
    }
    entrypoints: dict[str, Any] = {"web": {"address": "127.0.0.1:0", **web}}
    dynamic: dict[str, Any] = {"http": {"routers": routers, "services": {"app": service}}}
    if directory is not None:
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(directory / "ca.pem"))
        cert, key = pem_pair(ca.issue_cert("app.test"))
        routers["secure"] = {
            "rule": "Host(`app.test`)",
            "entryPoints": ["websecure"],
            "service": "app",
            "tls": {},
        }
        dynamic["tls"] = {"certificates": [{"certFile": cert, "keyFile": key}]}
        entrypoints["websecure"] = {"address": "127.0.0.1:0"}
    static = {"entryPoints": entrypoints, "log": {"level": "INFO"}}
    return static, dynamic


def curl(*args: str) -> str:
    done = subprocess.run(
        ["curl", "-sS", "--max-time", "20", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout


class RawClient:
    """An HTTP/2 client over a blocking socket (h2c with prior knowledge)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self.conn = h2.connection.H2Connection(config)
        self.conn.initiate_connection()
        self.events: list[h2.events.Event] = []
        self.closed = False  # the server ended the connection (a write failed, or EOF)
        self.eof = False
        self.bodies: dict[int, bytes] = {}
        self.flush()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data and not self.closed:
            try:
                self.sock.sendall(data)
            except OSError:  # the server ended the connection (a refused attack)
                self.closed = True

    def get(self, path: str, extra: list[tuple[bytes, bytes]] | None = None) -> int:
        stream_id: int = self.conn.get_next_available_stream_id()
        fields = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"app.test")]
        fields += [(b":path", path.encode()), *(extra or [])]
        self.conn.send_headers(stream_id, fields, end_stream=True)
        self.flush()
        return stream_id

    def read_until(self, done: Callable[[], bool], what: str) -> None:
        while not done():
            # A write that failed leaves what the server sent before closing to be read.
            if self.eof:
                raise AssertionError(f"the connection closed before {what}")
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                self.closed = self.eof = True
                continue
            for event in self.conn.receive_data(data):
                self.events.append(event)
                if isinstance(event, h2.events.ConnectionTerminated) and not event.error_code:
                    # h2 as a client closes its state machine on any GOAWAY; a graceful one
                    # (RFC 9113 §6.8) still has streams to finish, so reading goes on.
                    self.conn.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
                if isinstance(event, h2.events.DataReceived):
                    stream = event.stream_id or 0
                    self.bodies[stream] = self.bodies.get(stream, b"") + (event.data or b"")
                    flow = event.flow_controlled_length or 0
                    self.conn.acknowledge_received_data(flow, stream)
            self.flush()

    def ended(self, stream_id: int) -> bool:
        return any(
            isinstance(e, h2.events.StreamEnded) and e.stream_id == stream_id for e in self.events
        )

    def reset_code(self, stream_id: int) -> int | None:
        for event in self.events:
            if isinstance(event, h2.events.StreamReset) and event.stream_id == stream_id:
                return int(event.error_code or 0)
        return None

    def goaway(self) -> h2.events.ConnectionTerminated | None:
        found = [e for e in self.events if isinstance(e, h2.events.ConnectionTerminated)]
        return found[0] if found else None

    def close(self) -> None:
        self.sock.close()


def test_curl_speaks_http2_over_tls_and_h2c(
    proxynow_factory: Start, backend: HttpBackend, tmp_path: Path
) -> None:
    static, dynamic = config(backend, tmp_path)
    proxy = proxynow_factory(static, dynamic)
    tls_port, plain_port = proxy.ports["websecure"], proxy.ports["web"]
    secure = [
        "--http2",
        "--cacert",
        str(tmp_path / "ca.pem"),
        "--resolve",
        f"app.test:{tls_port}:127.0.0.1",
        "-w",
        " %{http_version}\n",
    ]
    # Two URLs: one connection, two streams (curl multiplexes over the one it has).
    out = curl(*secure, f"https://app.test:{tls_port}/one", f"https://app.test:{tls_port}/two")
    assert out.splitlines() == ["b1 /one 2", "b1 /two 2"]
    h2c = ["--http2-prior-knowledge", "-w", " %{http_version}\n"]
    assert curl(*h2c, f"http://127.0.0.1:{plain_port}/three") == "b1 /three 2\n"
    # HTTP/1.1 is still served on both.
    http1 = ["--http1.1", "-w", " %{http_version}\n"]
    assert curl(*http1, f"http://127.0.0.1:{plain_port}/four") == "b1 /four 1.1\n"
    tls1 = [*secure[1:5], *http1]
    assert curl(*tls1, f"https://app.test:{tls_port}/five") == "b1 /five 1.1\n"
    assert backend.requests == 5


def test_drain_sends_goaway_and_finishes_the_stream_in_flight(
    proxynow_factory: Start, backend: HttpBackend
) -> None:
    static, dynamic = config(backend, transport={"lifeCycle": {"graceTimeOut": "60s"}})
    proxy = proxynow_factory(static, dynamic, workers=1)
    client = RawClient(proxy.ports["web"])
    try:
        stream = client.get("/slow")
        assert backend.arrived.wait(20)
        proxy.signal(signal.SIGTERM)
        client.read_until(lambda: client.goaway() is not None, "a GOAWAY")
        goaway = client.goaway()
        assert goaway is not None
        assert (goaway.error_code, goaway.last_stream_id) == (0, stream)
        assert not client.ended(stream)  # still in flight
        backend.release.set()
        client.read_until(lambda: client.ended(stream), "the stream's end")
        assert client.bodies[stream] == b"b1 /slow"
        client.read_until(lambda: client.closed, "the connection to close")
    finally:
        client.close()
    assert proxy.wait_exit() == 0


def test_streams_past_max_concurrent_are_refused_while_others_are_served(
    proxynow_factory: Start, backend: HttpBackend
) -> None:
    static, dynamic = config(backend, http2={"maxConcurrentStreams": 3})
    proxy = proxynow_factory(static, dynamic, workers=1)
    port = proxy.ports["web"]
    greedy = RawClient(port)
    try:
        held = [greedy.get("/slow") for _ in range(3)]
        poll(lambda: backend.requests == 3, 20, "three streams at the backend")
        extra = greedy.get("/slow")
        greedy.read_until(lambda: greedy.reset_code(extra) is not None, "the refusal")
        assert greedy.reset_code(extra) == 7  # REFUSED_STREAM
        # Another client is served meanwhile, and so is the greedy one's own connection.
        other = ["--http2-prior-knowledge", f"http://127.0.0.1:{port}/other"]
        assert curl(*other) == "b1 /other"
        backend.release.set()
        greedy.read_until(lambda: all(greedy.ended(s) for s in held), "the held streams")
        assert [greedy.bodies[s] for s in held] == [b"b1 /slow"] * 3
        again = greedy.get("/after")
        greedy.read_until(lambda: greedy.ended(again), "a stream after the refusal")
        assert greedy.bodies[again] == b"b1 /after"
    finally:
        greedy.close()
    assert backend.requests == 5


def test_a_huge_header_block_is_refused_while_another_client_is_served(
    proxynow_factory: Start, backend: HttpBackend
) -> None:
    static, dynamic = config(backend)
    proxy = proxynow_factory(static, dynamic, workers=1)
    port = proxy.ports["web"]
    bystander, attacker = RawClient(port), RawClient(port)
    try:
        # 2 MiB of headers (maxHeaderBytes is 1 MiB): HEADERS and CONTINUATION frames.
        huge = [(b"x-filler-%d" % i, b"v" * 8000) for i in range(256)]
        attacker.get("/huge", huge)
        served = bystander.get("/fine")  # while the attacker's connection is still open
        bystander.read_until(lambda: bystander.ended(served), "the bystander's answer")
        assert bystander.bodies[served] == b"b1 /fine"
        attacker.read_until(lambda: attacker.closed, "the connection to end")
        goaway = attacker.goaway()
        # GOAWAY with an error, or a reset if it came while the client was still sending.
        assert goaway is None or goaway.error_code != 0
    finally:
        attacker.close()
        bystander.close()
    assert curl("--http2-prior-knowledge", f"http://127.0.0.1:{port}/after") == "b1 /after"
    assert backend.requests == 2  # the huge request never reached it


def test_rapid_reset_is_cut_while_another_client_is_served(
    proxynow_factory: Start, backend: HttpBackend
) -> None:
    static, dynamic = config(backend)
    proxy = proxynow_factory(static, dynamic, workers=1)
    port = proxy.ports["web"]
    bystander, attacker = RawClient(port), RawClient(port)
    try:
        # CVE-2023-44487: open a stream and reset it at once, again and again.
        for _ in range(400):
            stream = attacker.get("/reset")
            attacker.conn.reset_stream(stream, 8)  # CANCEL
            attacker.flush()
            if attacker.closed:
                break
        attacker.read_until(lambda: attacker.goaway() is not None, "a GOAWAY")
        goaway = attacker.goaway()
        assert goaway is not None and goaway.error_code == 11  # ENHANCE_YOUR_CALM
        served = bystander.get("/fine")
        bystander.read_until(lambda: bystander.ended(served), "the bystander's answer")
        assert bystander.bodies[served] == b"b1 /fine"
    finally:
        attacker.close()
        bystander.close()


def _frame(kind: int, stream: int, payload: bytes, flags: int = 0) -> bytes:
    header = len(payload).to_bytes(3, "big") + bytes((kind, flags)) + stream.to_bytes(4, "big")
    return header + payload


# Frames that move nothing, 2000 in a row (the budget is 1000): each flood is met with
# GOAWAY(ENHANCE_YOUR_CALM) (CVE-2019-9512 PING, 9515 SETTINGS, 9516/9518 empty frames,
# PRIORITY and WINDOW_UPDATE churn).
FLOODS = {
    "ping": _frame(0x6, 0, b"12345678") * 2000,
    "settings": _frame(0x4, 0, b"") * 2000,
    "priority": b"".join(_frame(0x2, 2 * i + 1, b"\x00\x00\x00\x00\x10") for i in range(2000)),
    "window_update": _frame(0x8, 0, b"\x00\x00\x00\x01") * 2000,
    "unknown": _frame(0x20, 0, b"") * 2000,
}


@pytest.mark.parametrize("flood", [*FLOODS, "empty_data"])
def test_a_control_frame_flood_is_cut_while_another_client_is_served(
    proxynow_factory: Start, backend: HttpBackend, flood: str
) -> None:
    static, dynamic = config(backend)
    proxy = proxynow_factory(static, dynamic, workers=1)
    port = proxy.ports["web"]
    bystander, attacker = RawClient(port), RawClient(port)
    try:
        if flood == "empty_data":
            stream = attacker.conn.get_next_available_stream_id()
            fields = [(b":method", b"POST"), (b":scheme", b"http"), (b":authority", b"a.test")]
            attacker.conn.send_headers(stream, [*fields, (b":path", b"/up")])
            attacker.flush()
            frames = _frame(0x0, stream, b"") * 2000
        else:
            frames = FLOODS[flood]
        attacker.sock.sendall(frames)
        served = bystander.get("/fine")
        bystander.read_until(lambda: bystander.ended(served), "the bystander's answer")
        assert bystander.bodies[served] == b"b1 /fine"
        attacker.read_until(lambda: attacker.goaway() is not None, "a GOAWAY")
        goaway = attacker.goaway()
        assert goaway is not None and goaway.error_code == 11  # ENHANCE_YOUR_CALM
        attacker.read_until(lambda: attacker.closed, "the connection to close")
    finally:
        attacker.close()
        bystander.close()


def test_a_client_pinging_as_it_uses_the_connection_is_served(
    proxynow_factory: Start, backend: HttpBackend
) -> None:
    # The budget is of frames in a row without progress: requests in between renew it.
    static, dynamic = config(backend)
    proxy = proxynow_factory(static, dynamic, workers=1)
    client = RawClient(proxy.ports["web"])
    try:
        for round_ in range(3):
            client.sock.sendall(_frame(0x6, 0, b"12345678") * 900)
            stream = client.get("/round" + str(round_))
            client.read_until(lambda: client.ended(stream), "the answer")  # noqa: B023
            assert client.bodies[stream] == b"b1 /round%d" % round_
        assert client.goaway() is None
    finally:
        client.close()


def test_an_hpack_bomb_is_cut_while_another_client_is_served(
    proxynow_factory: Start, backend: HttpBackend
) -> None:
    # One 4000-byte field put in the dynamic table, then referenced by a one-byte index
    # 400 times: 1.6 MB decoded from 4 KB sent (maxHeaderBytes is 1 MiB).
    static, dynamic = config(backend)
    proxy = proxynow_factory(static, dynamic, workers=1)
    port = proxy.ports["web"]
    bystander, attacker = RawClient(port), RawClient(port)
    try:
        encoder = hpack.Encoder()
        fields = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"a.test")]
        block = encoder.encode([*fields, (b":path", b"/bomb"), (b"x-bomb", b"b" * 4000)])
        block += b"\xbe" * 400  # index 62: the newest entry of the dynamic table
        attacker.sock.sendall(_frame(0x1, 1, block, 0x5))
        served = bystander.get("/fine")
        bystander.read_until(lambda: bystander.ended(served), "the bystander's answer")
        attacker.read_until(lambda: attacker.goaway() is not None, "a GOAWAY")
        goaway = attacker.goaway()
        assert goaway is not None and goaway.error_code == 11  # ENHANCE_YOUR_CALM
    finally:
        attacker.close()
        bystander.close()
    assert backend.requests == 1  # the bomb never reached it


def test_a_continuation_flood_is_cut_while_another_client_is_served(
    proxynow_factory: Start, backend: HttpBackend
) -> None:
    # CVE-2024-27316 and kin: a header block never ended, in endless small CONTINUATIONs.
    static, dynamic = config(backend)
    proxy = proxynow_factory(static, dynamic, workers=1)
    port = proxy.ports["web"]
    bystander, attacker = RawClient(port), RawClient(port)
    try:
        fields = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"a.test")]
        block = hpack.Encoder().encode([*fields, (b":path", b"/cont")])
        frames = _frame(0x1, 1, block, 0x1)  # END_STREAM, no END_HEADERS
        frames += _frame(0x9, 1, b"\x40\x01a\x01b") * 5000  # a field each, never the end
        with contextlib.suppress(OSError):  # cut while sending
            attacker.sock.sendall(frames)
        served = bystander.get("/fine")
        bystander.read_until(lambda: bystander.ended(served), "the bystander's answer")
        attacker.read_until(lambda: attacker.closed, "the connection to close")
        goaway = attacker.goaway()
        assert goaway is None or goaway.error_code != 0
    finally:
        attacker.close()
        bystander.close()
    assert backend.requests == 1


def test_a_zero_window_client_is_closed_while_another_client_is_served(
    proxynow_factory: Start, backend: HttpBackend
) -> None:
    # SETTINGS_INITIAL_WINDOW_SIZE 0 and never a WINDOW_UPDATE: the response waits, with its
    # backend paused, until idleTimeout (2 s here) passes with nothing let out.
    static, dynamic = config(backend, transport={"respondingTimeouts": {"idleTimeout": "2s"}})
    proxy = proxynow_factory(static, dynamic, workers=1)
    port = proxy.ports["web"]
    bystander, attacker = RawClient(port), RawClient(port)
    try:
        attacker.sock.sendall(_frame(0x4, 0, b"\x00\x04\x00\x00\x00\x00"))  # window 0
        stream = attacker.get("/held")
        poll(lambda: backend.requests == 1, 20, "the request at the backend")
        served = bystander.get("/fine")
        bystander.read_until(lambda: bystander.ended(served), "the bystander's answer")
        assert bystander.bodies[served] == b"b1 /fine"
        attacker.read_until(lambda: attacker.closed, "the connection to close")
        assert not attacker.ended(stream)
    finally:
        attacker.close()
        bystander.close()
