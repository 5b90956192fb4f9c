"""Instructions per 1 MiB response body through the libnghttp2 codec (edge/http2/ngcodec.py).

The h2-tls-1m scenario's DATA path without sockets or TLS: per request, a client's HEADERS
is received, the response head submitted, and the body handed to the codec as the HTTP/2
front end hands it (`window`, `data`, `output` per backend read of 256,000 bytes, as strace
shows uvloop's reads), the output framed in 16 KiB DATA frames. The client's windows are
h2load's (2^30 per stream, the connection's given back per response), so no read waits.

    PYTHONHASHSEED=0 PYTHONPATH=. valgrind --tool=callgrind --collect-atstart=no \\
        --toggle-collect=functools_reduce --callgrind-out-file=/tmp/cg.h2body.%p \\
        python bench/h2_body_count.py 100
"""

from __future__ import annotations

import functools
import sys

import h2.config
import h2.connection
import h2.settings

from bench.configs import BODIES
from bench.h2_codec_count import REQUEST_HEADERS
from proxynow.edge.http2 import ngcodec
from proxynow.edge.http2.codec import Headers, Settings
from proxynow.edge.http2.nglib import load

READ = 256_000
HEAD: Headers = [(b":status", b"200"), (b"content-length", b"1048576")]
WARM = 20


def client_bytes(count: int) -> tuple[bytes, list[bytes]]:
    """The preface (h2load's windows), then per request its HEADERS and a connection
    WINDOW_UPDATE for the previous response's bytes."""
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.local_settings = h2.settings.Settings(
        client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2**30}
    )
    client.initiate_connection()
    client.increment_flow_control_window(2**30)
    preface = client.data_to_send()
    requests = []
    for index in range(count):
        client.send_headers(1 + 2 * index, REQUEST_HEADERS, end_stream=True)
        data = client.data_to_send()
        requests.append(data + b"\x00\x00\x04\x08\x00\x00\x00\x00\x00\x00\x10\x00\x00")
    return preface, requests


def run(count: int) -> int:
    body = memoryview(BODIES["/1m"])
    reads = [bytes(body[at : at + READ]) for at in range(0, len(body), READ)]
    lib = load()
    assert lib is not None, "libnghttp2 does not open"
    ngcodec.available(lib)
    codec = ngcodec.NgCodec(Settings())
    streams: list[int] = []

    class Handler:
        def on_request(self, stream_id: int, headers: Headers, ended: bool) -> None:
            streams.append(stream_id)

        def on_data(self, stream_id: int, data: bytes, flow: int, ended: bool) -> None: ...
        def on_trailers(self, stream_id: int, headers: Headers) -> None: ...
        def on_reset(self, stream_id: int) -> None: ...
        def on_window(self, stream_id: int) -> None: ...
        def on_goaway(self) -> None: ...

    handler = Handler()
    preface, requests = client_bytes(WARM + count)
    codec.start()
    codec.receive(preface, handler)
    codec.output()
    feed = iter(requests)

    def one(total: int, _: object) -> int:
        codec.receive(next(feed), handler)
        stream_id = streams.pop()
        codec.headers(stream_id, HEAD, False)
        last = len(reads) - 1
        for index, data in enumerate(reads):
            assert codec.window(stream_id) >= len(data)
            codec.data(stream_id, data, index == last)
            total += len(codec.output())
        return total

    written = functools.reduce(one, range(WARM), 0)
    # Measured inside one C call: --collect-atstart=no --toggle-collect=functools_reduce
    return functools.reduce(one, range(count), written)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    written = run(count)
    print(f"{count} measured responses (and {WARM} before them), {written} bytes written")


if __name__ == "__main__":
    main()
