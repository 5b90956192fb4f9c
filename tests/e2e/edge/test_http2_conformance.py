"""h2spec's cases as a table (RFC 9113, RFC 7541), sent as raw frames to a running
`proxynow run` over h2c with prior knowledge.

h2spec (github.com/summerwind/h2spec) is a Go binary that cannot be installed here; its case
list is the index: each row names the h2spec case, the requirement, the frames sent after a
valid preface and SETTINGS, and what the RFC requires in answer: a connection error
(GOAWAY with the code), a stream error (RST_STREAM with the code; h2spec accepts a
connection error with the same code too), or no error (the PING sent after the case is
answered). Frames are built with hyperframe and HPACK blocks with hpack (both come with h2).
The table runs against each HTTP/2 codec (PROXYNOW_H2_CODEC=nghttp2, then h2).
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import hpack
import pytest
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    RstStreamFrame,
    SettingsFrame,
)

from tests.support.h2codecs import CODECS, codec_env
from tests.support.proc import HttpBackend, ProxynowProcess, start_proxynow

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
PROBE = b"conform!"  # the PING after each case: answered means "no error so far"
# A server may send its PING ACK ahead of an RST_STREAM queued before it (libnghttp2 sends
# control frames first; RFC 9113 orders neither): on the first ACK a second PING goes out,
# and its ACK, written after the server read it, comes after all the first one's answers.
SECOND = b"conform2"

NO_ERROR, PROTOCOL_ERROR, FLOW_CONTROL_ERROR, STREAM_CLOSED = 0, 1, 3, 5
FRAME_SIZE_ERROR, COMPRESSION_ERROR = 6, 9

REQUEST = [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/")]
REQUEST += [(b":authority", b"app.test")]
POST = [(b":method", b"POST"), *REQUEST[1:]]


def block(fields: list[tuple[bytes, bytes]]) -> bytes:
    return bytes(hpack.Encoder().encode(fields))


def headers(stream: int, fields: list[tuple[bytes, bytes]], *flags: str) -> bytes:
    frame = HeadersFrame(stream, block(fields))
    for flag in flags or ("END_HEADERS", "END_STREAM"):
        frame.flags.add(flag)
    return frame.serialize()


def raw(kind: int, stream: int, payload: bytes, flags: int = 0) -> bytes:
    """A frame as bytes, whatever its length or fields (for the malformed ones)."""
    return (
        struct.pack(">I", len(payload))[1:]
        + bytes((kind, flags))
        + struct.pack(">I", stream)
        + payload
    )


def settings(*pairs: tuple[int, int]) -> bytes:
    return raw(0x4, 0, b"".join(struct.pack(">HI", k, v) for k, v in pairs))


def data(stream: int, payload: bytes, *flags: str) -> bytes:
    frame = DataFrame(stream, payload)
    for flag in flags:
        frame.flags.add(flag)
    return frame.serialize()


def window(stream: int, increment: int) -> bytes:
    return raw(0x8, stream, struct.pack(">I", increment))


@dataclass(frozen=True)
class Case:
    id: str  # h2spec's numbering (http2/<section>/<n>, hpack/<section>/<n>)
    requirement: str
    frames: bytes
    # ("connection", code), ("stream", code): a stream error, or a connection error with
    # the same code; ("ok", 0): answered without an error. "close" ends the exchange at the
    # preface (no PING can follow an invalid one).
    expect: tuple[str, int]
    preface: bool = True
    # h2spec passes a connection error when the connection just closes; the table asks
    # for the GOAWAY except here: on h2c an invalid preface is not HTTP/2 at all, and the
    # HTTP/1.1 front end that reads it closes the connection.
    closing_is_enough: bool = False
    # Where libnghttp2 answers otherwise, by a choice of its own (docs/http2.md, "The
    # codec"): what it does instead, asserted as such when the nghttp2 codec runs.
    nghttp2: tuple[str, int] | None = None


def cases() -> list[Case]:
    big = 16385
    return [
        Case(
            "http2/3.5/1",
            "an invalid connection preface is a connection error",
            b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + settings(),
            ("connection", PROTOCOL_ERROR),
            preface=False,
            closing_is_enough=True,
        ),
        Case(
            "http2/4.1/1",
            "a frame of an unknown type is ignored",
            raw(0x16, 0, b"abc"),
            ("ok", 0),
        ),
        Case(
            "http2/4.1/2",
            "undefined flags are ignored",
            raw(0x6, 0, b"x" * 8, 0x16),
            ("ok", 0),
        ),
        Case(
            "http2/4.2/2",
            "a DATA frame larger than SETTINGS_MAX_FRAME_SIZE is FRAME_SIZE_ERROR",
            headers(1, POST, "END_HEADERS") + raw(0x0, 1, b"x" * big),
            ("stream", FRAME_SIZE_ERROR),
        ),
        Case(
            "http2/4.2/3",
            "a HEADERS frame larger than SETTINGS_MAX_FRAME_SIZE is a connection error",
            raw(0x1, 1, block(REQUEST) + b"\x00" * big, 0x5),
            ("connection", FRAME_SIZE_ERROR),
        ),
        Case(
            "http2/4.3/1",
            "an invalid header block fragment is COMPRESSION_ERROR",
            raw(0x1, 1, b"\x00\x00\x00\x00\x0f", 0x5),  # a literal whose name length overruns
            ("connection", COMPRESSION_ERROR),
        ),
        Case(
            "http2/4.3/3",
            "a frame between HEADERS and its CONTINUATION is PROTOCOL_ERROR",
            headers(1, REQUEST, "END_STREAM") + PriorityFrame(1, depends_on=0).serialize(),
            ("connection", PROTOCOL_ERROR),
        ),
        Case(
            "http2/5.1/1",
            "DATA on an idle stream is PROTOCOL_ERROR",
            data(1, b"x", "END_STREAM"),
            ("connection", PROTOCOL_ERROR),
        ),
        Case(
            "http2/5.1/2",
            "RST_STREAM on an idle stream is PROTOCOL_ERROR",
            RstStreamFrame(1, error_code=8).serialize(),
            ("connection", PROTOCOL_ERROR),
        ),
        Case(
            "http2/5.1/3",
            "WINDOW_UPDATE on an idle stream is PROTOCOL_ERROR",
            window(1, 100),
            ("connection", PROTOCOL_ERROR),
        ),
        Case(
            "http2/5.1/5",
            "DATA on a half-closed (remote) stream is STREAM_CLOSED",
            headers(1, REQUEST) + data(1, b"x"),
            ("stream", STREAM_CLOSED),
        ),
        Case(
            "http2/5.1/6",
            "HEADERS on a half-closed (remote) stream is STREAM_CLOSED",
            headers(1, REQUEST) + headers(1, [(b"x-trailer", b"1")]),
            ("stream", STREAM_CLOSED),
        ),
        Case(
            "http2/5.1/9",
            "DATA on a stream closed by RST_STREAM is STREAM_CLOSED",
            headers(1, POST, "END_HEADERS")
            + RstStreamFrame(1, error_code=8).serialize()
            + data(1, b"x"),
            ("stream", STREAM_CLOSED),
        ),
        Case(
            "http2/5.1.1/1",
            "an even-numbered stream from the client is PROTOCOL_ERROR",
            headers(2, REQUEST),
            ("connection", PROTOCOL_ERROR),
        ),
        Case(
            "http2/5.1.1/2",
            "a stream id lower than one already opened is PROTOCOL_ERROR",
            headers(5, POST, "END_HEADERS") + headers(3, REQUEST),
            ("connection", PROTOCOL_ERROR),
            # libnghttp2 ignores it: it cannot tell a stream never opened from one it
            # closed, whose trailers may still be on their way.
            nghttp2=("ok", 0),
        ),
        Case(
            "http2/5.5/1",
            "an unknown extension frame in a header block is PROTOCOL_ERROR",
            headers(1, REQUEST, "END_STREAM") + raw(0x16, 1, b"x"),
            ("connection", PROTOCOL_ERROR),
        ),
        Case(
            "http2/6.1/1",
            "DATA on stream 0 is PROTOCOL_ERROR",
            raw(0x0, 0, b"x"),
            ("connection", PROTOCOL_ERROR),
        ),
        Case(
            "http2/6.1/2",
            "DATA on a stream that is not open is STREAM_CLOSED",
            headers(1, REQUEST) + data(1, b"x", "END_STREAM"),
            ("stream", STREAM_CLOSED),
        ),
        Case(
            "http2/6.1/3",
            "DATA whose padding is as long as the payload is PROTOCOL_ERROR",
            headers(1, POST, "END_HEADERS") + raw(0x0, 1, b"\x06abcd", 0x9),
            ("connection", PROTOCOL_ERROR),
        ),
        Case(
            "http2/6.2/1",
            "HEADERS on stream 0 is PROTOCOL_ERROR",
            raw(0x1, 0, block(REQUEST), 0x5),
            ("connection", PROTOCOL_ERROR),
        ),
        Case(
            "http2/6.2/2",
            "HEADERS whose padding exceeds the payload is PROTOCOL_ERROR",
            raw(0x1, 1, b"\xff" + block(REQUEST), 0xD),
            ("connection", PROTOCOL_ERROR),
        ),
        Case(
            "http2/6.3/1",
            "PRIORITY on stream 0 is PROTOCOL_ERROR",
            raw(0x2, 0, b"\x00\x00\x00\x01\x10"),
            ("connection", PROTOCOL_ERROR),
        ),
        Case(
            "http2/6.3/2",
            "PRIORITY of a length other than 5 is FRAME_SIZE_ERROR",
            raw(0x2, 1, b"\x00\x00\x00\x03"),
            ("stream", FRAME_SIZE_ERROR),
        ),
        Case(
            "http2/6.4/1",
            "RST_STREAM on stream 0 is PROTOCOL_ERROR",
            raw(0x3, 0, b"\x00\x00\x00\x08"),
            ("connection", PROTOCOL_ERROR),
        ),
        Case(
            "http2/6.4/3",
            "RST_STREAM of a length other than 4 is FRAME_SIZE_ERROR",
            headers(1, POST, "END_HEADERS") + raw(0x3, 1, b"\x00\x00\x08"),
            ("connection", FRAME_SIZE_ERROR),
        ),
        Case(
            "http2/6.5/1",
            "a SETTINGS ACK with a payload is FRAME_SIZE_ERROR",
            raw(0x4, 0, b"\x00\x01\x00\x00\x10\x00", 0x1),
            ("connection", FRAME_SIZE_ERROR),
        ),
        Case(
            "http2/6.5/2",
            "SETTINGS on a stream other than 0 is PROTOCOL_ERROR",
            raw(0x4, 1, b"\x00\x01\x00\x00\x10\x00"),
            ("connection", PROTOCOL_ERROR),
        ),
        Case(
            "http2/6.5/3",
            "SETTINGS of a length not a multiple of 6 is FRAME_SIZE_ERROR",
            raw(0x4, 0, b"\x00\x01\x00\x00\x10"),
            ("connection", FRAME_SIZE_ERROR),
        ),
        Case(
            "http2/6.5.2/1",
            "SETTINGS_ENABLE_PUSH other than 0 or 1 is PROTOCOL_ERROR",
            settings((0x2, 2)),
            ("connection", PROTOCOL_ERROR),
        ),
        Case(
            "http2/6.5.2/2",
            "SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1 is FLOW_CONTROL_ERROR",
            settings((0x4, 1 << 31)),
            ("connection", FLOW_CONTROL_ERROR),
        ),
        Case(
            "http2/6.5.2/3",
            "SETTINGS_MAX_FRAME_SIZE below 16384 is PROTOCOL_ERROR",
            settings((0x5, 16383)),
            ("connection", PROTOCOL_ERROR),
        ),
        Case(
            "http2/6.5.2/4",
            "SETTINGS_MAX_FRAME_SIZE above 2^24-1 is PROTOCOL_ERROR",
            settings((0x5, 1 << 24)),
            ("connection", PROTOCOL_ERROR),
        ),
        Case(
            "http2/6.5.2/5",
            "an unknown setting is ignored",
            settings((0xFF, 1)),
            ("ok", 0),
        ),
        Case(
            "http2/6.7/3",
            "PING on a stream other than 0 is PROTOCOL_ERROR",
            raw(0x6, 1, b"x" * 8),
            ("connection", PROTOCOL_ERROR),
        ),
        Case(
            "http2/6.7/4",
            "PING of a length other than 8 is FRAME_SIZE_ERROR",
            raw(0x6, 0, b"x" * 6),
            ("connection", FRAME_SIZE_ERROR),
        ),
        Case(
            "http2/6.8/1",
            "GOAWAY on a stream other than 0 is PROTOCOL_ERROR",
            raw(0x7, 1, b"\x00" * 8),
            ("connection", PROTOCOL_ERROR),
        ),
        Case(
            "http2/6.9/1",
            "a WINDOW_UPDATE of 0 on the connection is PROTOCOL_ERROR",
            window(0, 0),
            ("connection", PROTOCOL_ERROR),
        ),
        Case(
            "http2/6.9/2",
            "a WINDOW_UPDATE of 0 on a stream is PROTOCOL_ERROR",
            headers(1, POST, "END_HEADERS") + window(1, 0),
            ("stream", PROTOCOL_ERROR),
        ),
        Case(
            "http2/6.9/3",
            "WINDOW_UPDATE of a length other than 4 is FRAME_SIZE_ERROR",
            raw(0x8, 0, b"\x00\x00\x01"),
            ("connection", FRAME_SIZE_ERROR),
        ),
        Case(
            "http2/6.9.1/2",
            "a connection window above 2^31-1 is FLOW_CONTROL_ERROR",
            window(0, (1 << 31) - 1) + window(0, (1 << 31) - 1),
            ("connection", FLOW_CONTROL_ERROR),
        ),
        Case(
            "http2/6.9.1/3",
            "a stream window above 2^31-1 is FLOW_CONTROL_ERROR",
            headers(1, POST, "END_HEADERS") + window(1, (1 << 31) - 1) + window(1, (1 << 31) - 1),
            ("stream", FLOW_CONTROL_ERROR),
        ),
        Case(
            "http2/6.9.2/3",
            "SETTINGS_INITIAL_WINDOW_SIZE that overflows a stream window is FLOW_CONTROL_ERROR",
            headers(1, POST, "END_HEADERS") + window(1, (1 << 31) - 65536) + settings((0x4, 65536)),
            ("connection", FLOW_CONTROL_ERROR),
            nghttp2=("stream", FLOW_CONTROL_ERROR),  # libnghttp2 resets the stream overflowed
        ),
        Case(
            "http2/6.10/2",
            "CONTINUATION after END_HEADERS is PROTOCOL_ERROR",
            headers(1, POST, "END_HEADERS") + ContinuationFrame(1, b"").serialize(),
            ("connection", PROTOCOL_ERROR),
        ),
        Case(
            "http2/6.10/4",
            "CONTINUATION on stream 0 is PROTOCOL_ERROR",
            headers(1, REQUEST, "END_STREAM") + raw(0x9, 0, b"", 0x4),
            ("connection", PROTOCOL_ERROR),
        ),
        Case(
            "http2/6.10/5",
            "CONTINUATION on another stream is PROTOCOL_ERROR",
            headers(1, REQUEST, "END_STREAM") + raw(0x9, 3, b"", 0x4),
            ("connection", PROTOCOL_ERROR),
        ),
        Case(
            "http2/8.1/1",
            "a second HEADERS without END_STREAM (not trailers) is PROTOCOL_ERROR",
            headers(1, POST, "END_HEADERS") + headers(1, [(b"x-t", b"1")], "END_HEADERS"),
            ("stream", PROTOCOL_ERROR),
        ),
        Case(
            "http2/8.1.2/1",
            "an uppercase header name is PROTOCOL_ERROR",
            headers(1, [*REQUEST, (b"X-Upper", b"1")]),
            ("stream", PROTOCOL_ERROR),
        ),
        Case(
            "http2/8.1.2.1/1",
            "an unknown pseudo-header is PROTOCOL_ERROR",
            headers(1, [*REQUEST, (b":custom", b"1")]),
            ("stream", PROTOCOL_ERROR),
        ),
        Case(
            "http2/8.1.2.1/2",
            "a response pseudo-header in a request is PROTOCOL_ERROR",
            headers(1, [*REQUEST, (b":status", b"200")]),
            ("stream", PROTOCOL_ERROR),
        ),
        Case(
            "http2/8.1.2.1/3",
            "a pseudo-header in trailers is PROTOCOL_ERROR",
            headers(1, POST, "END_HEADERS") + headers(1, [(b":method", b"GET")]),
            ("stream", PROTOCOL_ERROR),
        ),
        Case(
            "http2/8.1.2.1/4",
            "a pseudo-header after a regular field is PROTOCOL_ERROR",
            headers(1, [*REQUEST[:3], (b"x-a", b"1"), REQUEST[3]]),
            ("stream", PROTOCOL_ERROR),
        ),
        Case(
            "http2/8.1.2.2/1",
            "a connection-specific field is PROTOCOL_ERROR",
            headers(1, [*REQUEST, (b"connection", b"keep-alive")]),
            ("stream", PROTOCOL_ERROR),
        ),
        Case(
            "http2/8.1.2.2/2",
            "TE other than trailers is PROTOCOL_ERROR",
            headers(1, [*REQUEST, (b"te", b"gzip")]),
            ("stream", PROTOCOL_ERROR),
        ),
        Case(
            "http2/8.1.2.3/1",
            "an empty :path is PROTOCOL_ERROR",
            headers(1, [*REQUEST[:2], (b":path", b""), REQUEST[3]]),
            ("stream", PROTOCOL_ERROR),
        ),
        Case(
            "http2/8.1.2.3/2",
            "a request without :method is PROTOCOL_ERROR",
            headers(1, REQUEST[1:]),
            ("stream", PROTOCOL_ERROR),
        ),
        Case(
            "http2/8.1.2.3/3",
            "a request without :scheme is PROTOCOL_ERROR",
            headers(1, [REQUEST[0], *REQUEST[2:]]),
            ("stream", PROTOCOL_ERROR),
        ),
        Case(
            "http2/8.1.2.3/4",
            "a request without :path is PROTOCOL_ERROR",
            headers(1, [*REQUEST[:2], REQUEST[3]]),
            ("stream", PROTOCOL_ERROR),
        ),
        Case(
            "http2/8.1.2.3/5",
            "a duplicated :method is PROTOCOL_ERROR",
            headers(1, [REQUEST[0], *REQUEST]),
            ("stream", PROTOCOL_ERROR),
        ),
        Case(
            "http2/8.1.2.6/1",
            "DATA shorter than content-length is PROTOCOL_ERROR",
            headers(1, [*POST, (b"content-length", b"5")], "END_HEADERS")
            + data(1, b"abc", "END_STREAM"),
            ("stream", PROTOCOL_ERROR),
        ),
        Case(
            "http2/8.1.2.6/2",
            "DATA longer than content-length is PROTOCOL_ERROR",
            headers(1, [*POST, (b"content-length", b"1")], "END_HEADERS")
            + data(1, b"abc", "END_STREAM"),
            ("stream", PROTOCOL_ERROR),
        ),
        Case(
            "hpack/2.3.3/1",
            "an index past the dynamic table is COMPRESSION_ERROR",
            raw(0x1, 1, b"\x82\x86\x84\xff\x7f", 0x5),
            ("connection", COMPRESSION_ERROR),
        ),
        Case(
            "hpack/4.2/1",
            "a table size update above SETTINGS_HEADER_TABLE_SIZE is COMPRESSION_ERROR",
            raw(0x1, 1, b"\x3f\xe2\x1f" + block(REQUEST), 0x5),  # 4097
            ("connection", COMPRESSION_ERROR),
        ),
        Case(
            "hpack/5.2/1",
            "a Huffman string padded with more than 7 bits is COMPRESSION_ERROR",
            raw(0x1, 1, block(REQUEST) + b"\x40\x82\x94\xe7\xff\xff\xff\xff", 0x5),
            ("connection", COMPRESSION_ERROR),
        ),
        Case(
            "hpack/5.2/3",
            "a Huffman string containing EOS is COMPRESSION_ERROR",
            raw(0x1, 1, block(REQUEST) + b"\x40\x84\xff\xff\xff\xff\x01\x61", 0x5),
            ("connection", COMPRESSION_ERROR),
        ),
        Case(
            "hpack/6.1/1",
            "index 0 is COMPRESSION_ERROR",
            raw(0x1, 1, b"\x80" + block(REQUEST), 0x5),
            ("connection", COMPRESSION_ERROR),
        ),
    ]


@dataclass
class Outcome:
    kind: str  # "goaway", "rst", "ok", "closed" (without a GOAWAY), "nothing"
    code: int = 0
    frames: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        if self.kind in ("goaway", "rst"):
            return "{} {}".format(
                "GOAWAY" if self.kind == "goaway" else "RST_STREAM", CODES[self.code]
            )
        return {"ok": "answered, no error", "closed": "closed without GOAWAY"}.get(
            self.kind, self.kind
        )


CODES = {
    0: "NO_ERROR",
    1: "PROTOCOL_ERROR",
    2: "INTERNAL_ERROR",
    3: "FLOW_CONTROL_ERROR",
    5: "STREAM_CLOSED",
    6: "FRAME_SIZE_ERROR",
    7: "REFUSED_STREAM",
    8: "CANCEL",
    9: "COMPRESSION_ERROR",
    11: "ENHANCE_YOUR_CALM",
}


def read_frames(sock: socket.socket) -> Iterator[Frame | None]:
    """Frames the server sends; None once the connection ends."""
    buffer = b""
    while True:
        while len(buffer) >= 9:
            length = int.from_bytes(buffer[:3], "big")
            if len(buffer) < 9 + length:
                break
            frame, _ = Frame.parse_frame_header(memoryview(buffer[:9]))
            frame.parse_body(memoryview(buffer[9 : 9 + length]))
            buffer = buffer[9 + length :]
            yield frame
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            chunk = b""
        if not chunk:
            yield None
            return
        buffer += chunk


def run_case(port: int, case: Case) -> Outcome:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        hello = PREFACE + SettingsFrame(0).serialize() if case.preface else b""
        ack = SettingsFrame(0, flags=["ACK"]).serialize()
        # The server may end it before all is written; what it answered is read.
        with contextlib.suppress(OSError):
            sock.sendall(hello + case.frames + PingFrame(0, PROBE).serialize())
        outcome = Outcome("nothing")
        for frame in read_frames(sock):
            if frame is None:
                return outcome if outcome.kind != "nothing" else Outcome("closed")
            outcome.frames.append(type(frame).__name__)
            if isinstance(frame, SettingsFrame) and "ACK" not in frame.flags:
                with contextlib.suppress(OSError):
                    sock.sendall(ack)
            elif isinstance(frame, GoAwayFrame):
                if frame.error_code or outcome.kind == "nothing":
                    return Outcome("goaway", frame.error_code)
            elif isinstance(frame, RstStreamFrame):
                if outcome.kind == "nothing":
                    outcome = Outcome("rst", frame.error_code)
            elif isinstance(frame, PingFrame) and "ACK" in frame.flags:
                if frame.opaque_data == PROBE:
                    with contextlib.suppress(OSError):
                        sock.sendall(PingFrame(0, SECOND).serialize())
                elif frame.opaque_data == SECOND:
                    return Outcome("ok") if outcome.kind == "nothing" else outcome
    return outcome


def conforms(case: Case, outcome: Outcome) -> bool:
    scope, code = case.expect
    if scope == "ok":
        return outcome.kind == "ok"
    if outcome.kind == "goaway":
        return outcome.code == code
    if outcome.kind == "closed":
        return case.closing_is_enough
    return scope == "stream" and outcome.kind == "rst" and outcome.code == code


@pytest.fixture(scope="module", params=CODECS)
def codec(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="module")
def port(codec: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    # Each codec (libnghttp2's, h2's: edge/http2/choice.py) answers the whole table.
    with HttpBackend("b1") as backend, codec_env(codec):
        static = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}, "log": {"level": "INFO"}}
        service = {"loadBalancer": {"servers": [{"url": backend.url}]}}
        router = {"rule": "PathPrefix(`/`)", "entryPoints": ["web"], "service": "app"}
        dynamic = {"http": {"routers": {"all": router}, "services": {"app": service}}}
        proxy: ProxynowProcess = start_proxynow(
            Path(tmp_path_factory.mktemp("h2spec")), static, dynamic, workers=1
        )
        try:
            yield proxy.ports["web"]
        finally:
            proxy.stop()


CASES = cases()


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_h2spec_case(codec: str, port: int, case: Case) -> None:
    if codec == "nghttp2" and case.nghttp2 is not None:
        case = dataclasses.replace(case, expect=case.nghttp2)
    outcome = run_case(port, case)
    scope, code = case.expect
    wanted = "no error" if scope == "ok" else f"{scope} error {CODES[code]}"
    assert conforms(case, outcome), f"{case.id}: {wanted}; got {outcome} ({outcome.frames})"
    # The entrypoint still serves a valid request after each case.
    assert run_case(port, Case("after", "", headers(1, REQUEST), ("ok", 0))).kind == "ok"
