"""HTTP/2 to backends through a running `proxynow run`, on the faults a real server does not
produce on demand (tests/support/h2_backend.py, the `h2` library): refused streams and a
GOAWAY below a request are sent again (RFC 9113 §8.7), boundedly; a body with a
Content-Length and trailers keeps both for an HTTP/2 client; 103 and 100 reach HTTP/2
clients; a backend that vanishes without a FIN is found by PING (readIdleTimeout,
pingTimeout). Clients are curl, and the `h2` library where trailers must be read; each
fault is mounted while another client is served."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import h2.config
import h2.connection
import h2.events
import pytest

from tests.support.h2_backend import H2Backend
from tests.support.proc import ProxynowProcess, poll, proxynow_factory

__all__ = ["proxynow_factory"]

Start = Callable[..., ProxynowProcess]


@pytest.fixture
def backend() -> Iterator[H2Backend]:
    with H2Backend() as server:
        yield server


def config(port: int, transport: dict[str, Any] | None = None) -> tuple[dict[str, Any], ...]:
    service: dict[str, Any] = {"servers": [{"url": f"h2c://127.0.0.1:{port}"}]}
    http: dict[str, Any] = {
        "routers": {"r": {"rule": "PathPrefix(`/`)", "entryPoints": ["web"], "service": "s"}},
        "services": {"s": {"loadBalancer": service}},
    }
    if transport is not None:
        service["serversTransport"] = "t"
        http["serversTransports"] = {"t": transport}
    static = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}, "log": {"level": "INFO"}}
    return static, {"http": http}


CURL = ["curl", "-sS", "--max-time", "20", "--http2-prior-knowledge"]


def with_other(dynamic: dict[str, Any], port: int) -> None:
    """Route `/o` to the backend on `port` (another client's, served meanwhile)."""
    http = dynamic["http"]
    http["routers"]["o"] = {"rule": "Path(`/o`)", "service": "o", "priority": 100}
    http["services"]["o"] = {"loadBalancer": {"servers": [{"url": f"h2c://127.0.0.1:{port}"}]}}


def curl(*args: str, timeout: float = 20) -> str:
    done = subprocess.run(
        ["curl", "-sS", "--max-time", str(timeout), *args],
        capture_output=True,
        text=True,
        timeout=timeout + 10,
        check=False,
    )
    return done.stdout


def status(url: str, *args: str, timeout: float = 20) -> str:
    return curl("-o", "/dev/null", "-w", "%{http_code}", *args, url, timeout=timeout)


def h2_get(port: int, path: str) -> list[tuple[str, Any]]:
    """What an HTTP/2 client reads of a GET, in order: heads, DATA (with END_STREAM or
    not), trailers."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    config = h2.config.H2Configuration(client_side=True, header_encoding=None)
    conn = h2.connection.H2Connection(config)
    conn.initiate_connection()
    fields = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"app.test")]
    conn.send_headers(1, [*fields, (b":path", path.encode()), (b"te", b"trailers")], True)
    sock.sendall(conn.data_to_send())
    seen: list[tuple[str, Any]] = []
    with sock:
        while data := sock.recv(65536):
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.InformationalResponseReceived):
                    seen.append(("interim", dict(event.headers or [])))
                elif isinstance(event, h2.events.ResponseReceived):
                    seen.append(("head", dict(event.headers or [])))
                elif isinstance(event, h2.events.DataReceived):
                    seen.append(("data", (event.data, event.stream_ended is not None)))
                elif isinstance(event, h2.events.TrailersReceived):
                    seen.append(("trailers", dict(event.headers or [])))
                elif isinstance(event, h2.events.StreamEnded):
                    return seen
            sock.sendall(conn.data_to_send())
    raise AssertionError(f"the connection closed before the stream ended: {seen}")


# ---------------------------------------------------------------- refused streams


@pytest.mark.parametrize("version", ["--http1.1", "--http2-prior-knowledge"])
def test_a_refused_stream_is_sent_again_on_another_connection(
    proxynow_factory: Start, backend: H2Backend, version: str
) -> None:
    """REFUSED_STREAM says the request was not processed: a POST (here with an empty
    body, so that nothing of it needs keeping) is sent again, without a retry middleware."""
    proxy = proxynow_factory(*config(backend.port), workers=1)
    url = f"http://127.0.0.1:{proxy.ports['web']}/refuse"
    backend.refusals = 1
    assert curl(version, "-X", "POST", "-d", "", url) == "ok /refuse"
    assert backend.requests["/refuse"] == 2
    assert backend.refusals == 0


def test_a_goaway_below_the_request_sends_it_again(
    proxynow_factory: Start, backend: H2Backend
) -> None:
    proxy = proxynow_factory(*config(backend.port), workers=1)
    url = f"http://127.0.0.1:{proxy.ports['web']}/goaway"
    backend.goaways = 1
    assert curl("--http2-prior-knowledge", "-X", "POST", "-d", "", url) == "ok /goaway"
    assert backend.requests["/goaway"] == 2
    assert backend.connections == 2  # the GOAWAY ended the first one


def test_a_backend_that_refuses_everything_gets_one_retry_then_a_502(
    proxynow_factory: Start, backend: H2Backend
) -> None:
    proxy = proxynow_factory(*config(backend.port), workers=1)
    base = f"http://127.0.0.1:{proxy.ports['web']}"
    backend.refusals = 1000
    for _ in range(3):
        assert status(base + "/refuse", "--http2-prior-knowledge") == "502"
        assert curl(base + "/other") == "ok /other"  # another client is served meanwhile
    assert backend.requests["/refuse"] == 6  # each sent twice, never more


def test_a_refused_request_whose_body_went_is_not_sent_again(
    proxynow_factory: Start, backend: H2Backend
) -> None:
    """Refused once its body was in: nothing kept the body that went out (no retry or
    buffering middleware), so a 502, as Traefik answers it (Go's transport cannot rewind a
    client's body either)."""
    proxy = proxynow_factory(*config(backend.port), workers=1)
    url = f"http://127.0.0.1:{proxy.ports['web']}/refuse-late"
    for version in ("--http2-prior-knowledge", "--http1.1"):
        backend.refusals = 1
        assert status(url, version, "--data-binary", "payload") == "502"
    assert backend.requests["/refuse-late"] == 2


@pytest.mark.parametrize("closing", [{"max_streams": 0}, {"goaway_first": True}])
def test_a_backend_allowing_no_streams_gets_a_502_not_a_dial_loop(
    proxynow_factory: Start, closing: dict[str, Any]
) -> None:
    """SETTINGS_MAX_CONCURRENT_STREAMS 0, or a GOAWAY with the SETTINGS of each new
    connection: the pool dialed again and again for ever; now the request gets a 502."""
    with H2Backend(**closing) as closed, H2Backend() as fine:
        static, dynamic = config(closed.port)
        http = dynamic["http"]
        http["routers"]["fine"] = {"rule": "Path(`/fine`)", "service": "f", "priority": 100}
        http["services"]["f"] = {
            "loadBalancer": {"servers": [{"url": f"h2c://127.0.0.1:{fine.port}"}]}
        }
        proxy = proxynow_factory(static, dynamic, workers=1)
        base = f"http://127.0.0.1:{proxy.ports['web']}"
        assert status(base + "/", "--http2-prior-knowledge", timeout=10) == "502"
        assert curl(base + "/fine") == "ok /fine"
        assert closed.connections <= 2  # the GOAWAY may come after a stream went out
        assert closed.requests.total() == 0


# ---------------------------------------------------------------- Content-Length and trailers


def test_an_http2_client_gets_the_length_the_body_and_the_trailers(
    proxynow_factory: Start, backend: H2Backend
) -> None:
    proxy = proxynow_factory(*config(backend.port), workers=1)
    seen = h2_get(proxy.ports["web"], "/trailers")
    assert seen[0] == ("head", {b":status": b"200", b"content-length": b"5"})
    body = b"".join(data for kind, (data, _) in seen if kind == "data")  # type: ignore[misc]
    assert body == b"hello"
    assert seen[-1] == ("trailers", {b"x-checksum": b"abc", b"grpc-status": b"0"})


@pytest.mark.parametrize("te", [[], ["-H", "TE: trailers"]])
def test_an_http1_client_gets_the_length_and_no_trailers_as_from_traefik(
    proxynow_factory: Start, backend: H2Backend, te: list[str]
) -> None:
    """Go's ReverseProxy keeps the backend's Content-Length and its HTTP/1.1 server then
    writes no trailers (checked against Traefik 3.7, `TE: trailers` or not)."""
    proxy = proxynow_factory(*config(backend.port), workers=1)
    url = f"http://127.0.0.1:{proxy.ports['web']}/trailers"
    raw = curl("--http1.1", "--raw", "-i", *te, url)
    head, _, body = raw.partition("\n\n")  # curl's \r\n, read as text
    assert "Content-Length: 5" in head.split("\n")
    assert "chunked" not in head.lower()
    assert body == "hello"


# ---------------------------------------------------------------- interim responses


def test_early_hints_reach_an_http2_client_before_the_response(
    proxynow_factory: Start, backend: H2Backend
) -> None:
    proxy = proxynow_factory(*config(backend.port), workers=1)
    port = proxy.ports["web"]
    seen = h2_get(port, "/hints")
    assert seen[0] == ("interim", {b":status": b"103", b"link": b"</style.css>; rel=preload"})
    assert seen[1][0] == "head" and seen[1][1][b":status"] == b"200"
    raw = curl("--http2-prior-knowledge", "-i", f"http://127.0.0.1:{port}/hints")
    assert raw.startswith("HTTP/2 103 \nlink: </style.css>; rel=preload\n\nHTTP/2 200")
    assert raw.endswith("hinted")
    raw = curl("--http1.1", "-i", f"http://127.0.0.1:{port}/hints")  # as over HTTP/1.1
    assert raw.startswith("HTTP/1.1 103 Early Hints\nlink: </style.css>; rel=preload")


def test_a_backends_100_continue_reaches_an_http2_client(
    proxynow_factory: Start, backend: H2Backend
) -> None:
    """curl waits up to its expect100-timeout for a 100 before it sends the body: the
    backend's 100 lets it go at once (--expect100-timeout 30 would fail the test without)."""
    proxy = proxynow_factory(*config(backend.port), workers=1)
    url = f"http://127.0.0.1:{proxy.ports['web']}/continue"
    args = ["--http2-prior-knowledge", "-i", "--expect100-timeout", "30"]
    started = time.monotonic()
    raw = curl(*args, "-H", "Expect: 100-continue", "--data-binary", "12345", url, timeout=25)
    assert raw.startswith("HTTP/2 100 \n\nHTTP/2 200")
    assert raw.endswith("got 5")
    assert time.monotonic() - started < 10


def test_a_backend_sending_endless_interim_responses_gets_a_502(
    proxynow_factory: Start, backend: H2Backend
) -> None:
    proxy = proxynow_factory(*config(backend.port), workers=1)
    base = f"http://127.0.0.1:{proxy.ports['web']}"
    assert status(base + "/flood", "--http2-prior-knowledge") == "502"
    assert curl(base + "/other") == "ok /other"


# ---------------------------------------------------------------- health pings


PINGED = {"forwardingTimeouts": {"readIdleTimeout": "1s", "pingTimeout": "1s"}}


def test_an_idle_connection_is_pinged_and_kept_while_the_backend_answers(
    proxynow_factory: Start, backend: H2Backend
) -> None:
    proxy = proxynow_factory(*config(backend.port, PINGED), workers=1)
    base = f"http://127.0.0.1:{proxy.ports['web']}"
    assert curl(base + "/a") == "ok /a"
    poll(lambda: backend.pings >= 2, 15, "two health PINGs")
    assert curl(base + "/b") == "ok /b"
    assert backend.connections == 1 and backend.closed == 0


def test_no_pings_without_read_idle_timeout(proxynow_factory: Start, backend: H2Backend) -> None:
    """Traefik's default readIdleTimeout is 0: no health check."""
    proxy = proxynow_factory(*config(backend.port), workers=1)
    base = f"http://127.0.0.1:{proxy.ports['web']}"
    assert curl(base + "/a") == "ok /a"
    time.sleep(3)  # nothing to poll for: what is checked is that nothing happens
    assert backend.pings == 0
    assert curl(base + "/b") == "ok /b"
    assert backend.connections == 1


def test_a_vanished_idle_backend_connection_is_closed_and_the_next_request_served(
    proxynow_factory: Start, backend: H2Backend
) -> None:
    """The backend's end goes silent without a FIN after `/quiet`: without a health check
    the next request would wait on that connection forever."""
    proxy = proxynow_factory(*config(backend.port, PINGED), workers=1)
    base = f"http://127.0.0.1:{proxy.ports['web']}"
    assert curl(base + "/quiet") == "ok /quiet"
    poll(lambda: backend.closed == 1, 15, "the silent connection to be closed")
    assert curl(base + "/next", timeout=10) == "ok /next"
    assert backend.connections == 2


def test_a_request_on_a_vanished_backend_gets_a_502_while_another_client_is_served(
    proxynow_factory: Start, backend: H2Backend
) -> None:
    with H2Backend() as other:
        static, dynamic = config(backend.port, PINGED)
        with_other(dynamic, other.port)
        proxy = proxynow_factory(static, dynamic, workers=1)
        base = f"http://127.0.0.1:{proxy.ports['web']}"
        done = subprocess.Popen(
            [*CURL, "-o", "/dev/null", "-w", "%{http_code}", base + "/vanish"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            poll(lambda: backend.requests["/vanish"] == 1, 10, "the request to arrive")
            assert curl(base + "/o") == "ok /o"
            out, _ = done.communicate(timeout=30)
        finally:
            if done.poll() is None:
                done.kill()
                done.wait()
        assert out == "502"
        poll(lambda: backend.closed == 1, 10, "the silent connection to be closed")
        assert backend.connections == 1  # the request was not sent again


# ---------------------------------------------------------------- deadlines


def test_response_header_timeout_counts_from_the_request_sent_whole(
    proxynow_factory: Start, backend: H2Backend
) -> None:
    """A 3 s upload answered a second after its end, responseHeaderTimeout 2 s: a 200, as
    over HTTP/1.1 (and from Go: the time counts after the request is written whole)."""
    transport = {"forwardingTimeouts": {"responseHeaderTimeout": "2s"}}
    proxy = proxynow_factory(*config(backend.port, transport), workers=1)
    url = f"http://127.0.0.1:{proxy.ports['web']}/late"
    body = "x" * 6000
    for version in ("--http2-prior-knowledge", "--http1.1"):
        out = curl(version, "--limit-rate", "2k", "--data-binary", body, url, timeout=15)
        assert out == "got 6000", version


def test_write_timeout_resets_a_slow_response_and_the_connection_goes_on(
    proxynow_factory: Start, backend: H2Backend
) -> None:
    """writeTimeout is a deadline on each response (Go's HTTP/2 server, per stream): a
    response dripping for 10 s is reset at about 2 s; another client is served meanwhile."""
    static, dynamic = config(backend.port)
    static["entryPoints"]["web"]["transport"] = {"respondingTimeouts": {"writeTimeout": "2s"}}
    with H2Backend() as other:
        with_other(dynamic, other.port)
        proxy = proxynow_factory(static, dynamic, workers=1)
        base = f"http://127.0.0.1:{proxy.ports['web']}"
        started = time.monotonic()
        drip = subprocess.Popen(
            [*CURL, base + "/drip"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            poll(lambda: backend.requests["/drip"] == 1, 10, "the request to arrive")
            assert curl("--http2-prior-knowledge", base + "/o") == "ok /o"
            out, _ = drip.communicate(timeout=30)
        finally:
            if drip.poll() is None:
                drip.kill()
                drip.wait()
    elapsed = time.monotonic() - started
    assert drip.returncode != 0, "the dripping response must not end normally"
    assert 0 < len(out) < 20
    assert elapsed < 6, elapsed
