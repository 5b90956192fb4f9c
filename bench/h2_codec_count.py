"""Instructions per request of HTTP/2 codec candidates on the smallest server-side path.

Issue 14 asks to measure the codec before choosing it; timing benchmarks cannot run while
other work shares the machine, so this counts instructions with callgrind, as
bench/hotpath_count.py does for the HTTP/1 data plane. Per request, the server side of one
connection receives a client's HEADERS for a GET (curl's headers, HPACK-encoded by an `h2`
client, so its dynamic table is used as a real client's is), gets the request event, and
produces the response HEADERS (`:status`, content-length, content-type) and one DATA frame
with END_STREAM, all encoded to bytes. No routing and no upstream: the codec alone.

    PYTHONHASHSEED=0 valgrind --tool=callgrind --collect-atstart=no \\
        --toggle-collect=functools_reduce --callgrind-out-file=/tmp/cg.h2.%p \\
        python bench/h2_codec_count.py CANDIDATE 5000
    callgrind_annotate /tmp/cg.h2.<pid> | head   # the measured loop's total; / 5000

Candidates (`python bench/h2_codec_count.py --list`):
- `h2`: hyper-h2 configured as proxynow/edge/http2/codec.py configures it (inbound header
  validation and normalisation on, outbound off);
- `h2-novalidate`: the same without h2's inbound header validation and normalisation (what
  the validation costs);
- `h2-fast-hpack`: `h2` with its HPACK encoder and decoder replaced by `fast-hpack`'s (a fork
  of `hpack`; `pip install fast-hpack`);
- `proxynow-codec`: `h2` behind proxynow/edge/http2/codec.py, the interface the front end uses;
- `proxynow-ngcodec`: libnghttp2 (through cffi) behind the same interface
  (proxynow/edge/http2/ngcodec.py), the default codec where the library opens;
- `front-end`: not a codec but the whole HTTP/2 proxy path over libnghttp2's codec (front
  end, routing, a pooled upstream, accounting), to set beside bench/hotpath_count.py's
  HTTP/1.1 figure; `front-end-h2` the same over `h2`'s;
- `floor`: `hyperframe` and `hpack` alone, parsing the frame, decoding and encoding the
  headers and serializing the two frames with no connection state machine: what any
  Python-level codec built on those two must pay at least.
The measured requests run inside one `functools.reduce` call, after 200 warm-up ones.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable

import h2.config
import h2.connection
import h2.events
import hpack
from hyperframe.frame import DataFrame, Frame, HeadersFrame

REQUEST_HEADERS = [
    (b":method", b"GET"),
    (b":scheme", b"http"),
    (b":authority", b"127.0.0.1:8000"),
    (b":path", b"/"),
    (b"user-agent", b"curl/8.5.0"),
    (b"accept", b"*/*"),
]
RESPONSE_HEADERS = [
    (b":status", b"200"),
    (b"content-length", b"13"),
    (b"content-type", b"text/plain"),
]
BODY = b"hello, world\n"
WARM = 200

Step = Callable[[bytes], bytes]


def client_bytes(count: int) -> tuple[bytes, list[bytes]]:
    """The preface and SETTINGS (with a connection window large enough for every answer),
    then the bytes of each request's HEADERS frame, as an `h2` client sends them."""
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    client.increment_flow_control_window(2**31 - 1 - 65535)
    preface = client.data_to_send()
    requests = []
    for index in range(count):
        client.send_headers(1 + 2 * index, REQUEST_HEADERS, end_stream=True)
        requests.append(client.data_to_send())
    return preface, requests


def fast_hpack_codec() -> tuple[object, object]:
    """fast-hpack's encoder and decoder, one table per direction as RFC 7541 has them. Its
    `decode(raw=True)` returns str and `raw=False` bytes (the reverse of `hpack`'s, which h2
    relies on): the shim turns it around, at the cost of one call per header block."""
    import fast_hpack

    class Decoder(fast_hpack.Decoder):  # type: ignore[misc]
        def decode(self, data: bytes, raw: bool = False) -> list[tuple[bytes, bytes]]:
            return super().decode(data, raw=not raw)  # type: ignore[no-any-return]

    return fast_hpack.Encoder(fast_hpack.HeaderTable()), Decoder(fast_hpack.HeaderTable())


def h2_step(validate: bool, fast_hpack: bool) -> tuple[Step, Callable[[bytes], None]]:
    """The server side of one `h2` connection: a request's bytes in, the answer's bytes out."""
    config = h2.config.H2Configuration(
        client_side=False,
        header_encoding=None,
        validate_inbound_headers=validate,
        normalize_inbound_headers=validate,
        validate_outbound_headers=False,
        normalize_outbound_headers=False,
    )
    server = h2.connection.H2Connection(config)
    if fast_hpack:
        server.encoder, server.decoder = fast_hpack_codec()
    server.initiate_connection()

    def step(data: bytes) -> bytes:
        for event in server.receive_data(data):
            if type(event) is h2.events.RequestReceived:
                stream = event.stream_id
                server.send_headers(stream, RESPONSE_HEADERS)
                server.send_data(stream, BODY, end_stream=True)
        return server.data_to_send()

    def start(preface: bytes) -> None:
        server.receive_data(preface)
        server.data_to_send()

    return step, start


def floor_step() -> tuple[Step, Callable[[bytes], None]]:
    """Frames and HPACK with no connection state: the least a Python codec pays."""
    decoder, encoder = hpack.Decoder(), hpack.Encoder()

    def step(data: bytes) -> bytes:
        frame, length = Frame.parse_frame_header(memoryview(data[:9]))
        frame.parse_body(memoryview(data[9 : 9 + length]))
        assert isinstance(frame, HeadersFrame)
        decoder.decode(frame.data, raw=True)
        headers = HeadersFrame(
            frame.stream_id, encoder.encode(RESPONSE_HEADERS), flags=["END_HEADERS"]
        )
        body = DataFrame(frame.stream_id, BODY, flags=["END_STREAM"])
        return headers.serialize() + body.serialize()

    def start(preface: bytes) -> None:
        # The preface and the client's SETTINGS/WINDOW_UPDATE: skipped by the floor.
        return None

    return step, start


def proxynow_step(codec_name: str) -> tuple[Step, Callable[[bytes], None]]:
    """A codec through proxynow's codec interface (proxynow/edge/http2/codec.py): the
    library's cost plus the interface's, as the front end pays it (`h2`: that module's
    `Codec`; `nghttp2`: libnghttp2 through cffi, edge/http2/ngcodec.py)."""
    from proxynow.edge.http2.choice import codec_factory
    from proxynow.edge.http2.codec import Headers, Settings

    os.environ["PROXYNOW_H2_CODEC"] = codec_name
    codec = codec_factory()(Settings())

    class Answer:
        def on_request(self, stream_id: int, headers: Headers, ended: bool) -> None:
            codec.headers(stream_id, RESPONSE_HEADERS, False)
            codec.data(stream_id, BODY, True)

        def on_data(self, stream_id: int, data: bytes, flow: int, ended: bool) -> None: ...
        def on_trailers(self, stream_id: int, headers: Headers) -> None: ...
        def on_reset(self, stream_id: int) -> None: ...
        def on_window(self, stream_id: int) -> None: ...
        def on_goaway(self) -> None: ...

    handler = Answer()

    def step(data: bytes) -> bytes:
        codec.receive(data, handler)
        return codec.output()

    def start(preface: bytes) -> None:
        codec.start()
        codec.receive(preface, handler)
        codec.output()

    return step, start


def front_end_step(codec_name: str) -> tuple[Step, Callable[[bytes], None]]:
    """The whole HTTP/2 proxy path, as bench/hotpath_count.py drives HTTP/1.1: the front end
    (proxynow/edge/http2/protocol.py) over an in-memory transport, routed, forwarded on a
    pooled in-memory upstream connection, answered and accounted. Run inside a loop."""
    import asyncio

    from bench.hotpath_count import RESPONSE, MemoryTransport, config
    from proxynow.config.static import StaticConfig
    from proxynow.edge.graph.state import WorkerState
    from proxynow.edge.http.exchange import EntryPointRuntime
    from proxynow.edge.http2.factory import http2_protocol_factory
    from proxynow.edge.upstream.connection import UpstreamConnection
    from proxynow.snapshot import Snapshot

    os.environ["PROXYNOW_H2_CODEC"] = codec_name
    asyncio.set_event_loop(loop := asyncio.new_event_loop())
    static = StaticConfig.model_validate({"entryPoints": {"web": {"address": ":80"}}})
    state = WorkerState(tick_interval=1.0)
    state.load(Snapshot(version=1, config=config("")), static)

    async def made() -> asyncio.Protocol:
        return http2_protocol_factory(state, EntryPointRuntime("web"))()

    client = loop.run_until_complete(made())
    transport = MemoryTransport(("127.0.0.1", 40000))
    client.connection_made(transport)  # type: ignore[arg-type]
    (pool,) = state.resources.pools.pools.values()
    upstream = UpstreamConnection(pool)
    upstream.connection_made(MemoryTransport(("127.0.0.1", 9)))  # type: ignore[arg-type]
    pool.release(upstream, 0.0)

    ready = loop._ready  # type: ignore[attr-defined]  # asyncio's queue of callbacks

    def step(data: bytes) -> bytes:
        before = transport.written
        client.data_received(data)
        upstream.data_received(RESPONSE)
        while ready:  # the end of the loop's turn: the front end's deferred write
            ready.popleft()._run()
        return b"x" * (transport.written - before)

    def start(preface: bytes) -> None:
        client.data_received(preface)

    return step, start


CANDIDATES: dict[str, Callable[[], tuple[Step, Callable[[bytes], None]]]] = {
    "h2": lambda: h2_step(validate=True, fast_hpack=False),
    "h2-novalidate": lambda: h2_step(validate=False, fast_hpack=False),
    "h2-fast-hpack": lambda: h2_step(validate=True, fast_hpack=True),
    "floor": floor_step,
    "proxynow-codec": lambda: proxynow_step("h2"),
    "proxynow-ngcodec": lambda: proxynow_step("nghttp2"),
    "front-end": lambda: front_end_step("nghttp2"),
    "front-end-h2": lambda: front_end_step("h2"),
}


def run(name: str, count: int) -> int:
    preface, requests = client_bytes(WARM + count)
    step, start = CANDIDATES[name]()
    start(preface)
    written = 0
    for data in requests[:WARM]:
        written += len(step(data))
    measured = iter(requests[WARM:])

    def one(total: int, _: object) -> int:
        return total + len(step(next(measured)))

    # Measured inside one C call: --collect-atstart=no --toggle-collect=functools_reduce
    return functools.reduce(one, range(count), written)


def main() -> None:
    if "--list" in sys.argv:
        print("\n".join(CANDIDATES))
        return
    name = sys.argv[1] if len(sys.argv) > 1 else "h2"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    written = run(name, count)
    print(f"{name}: {count} measured requests (and {WARM} before them), {written} bytes answered")


if __name__ == "__main__":
    main()
