"""h2load as the HTTP/2 load generator: its summary read as wrk's, against a real h2c nginx."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from bench import procs
from bench.configs import write_nginx
from bench.h2load import h2_answers, parse_h2load_output, run_h2load
from bench.loadgen import Load

SUMMARY = """
finished in 2.00s, 15000.50 req/s, 1.20MB/s
requests: 30001 total, 30101 started, 30001 done, 29990 succeeded, 11 failed, 3 errored, 2 timeout
status codes: 29990 2xx, 0 3xx, 4 4xx, 2 5xx
traffic: 2.40MB (2516582) total, 1.10MB (1153433) headers (space savings 90.12%)
"""


def test_the_summary_and_the_latency_log_make_a_result() -> None:
    result = parse_h2load_output(SUMMARY, list(range(1, 101)))
    assert (result.requests, result.duration_s) == (30001, 2.0)
    assert result.rps == pytest.approx(15000.5)
    assert (result.p50_us, result.p99_us, result.max_us) == (51.0, 99.0, 100.0)
    assert (result.socket_errors, result.non_2xx, result.bytes) == (5, 6, 2516582)


def test_output_without_a_summary_says_so() -> None:
    with pytest.raises(ValueError, match="no h2load summary"):
        parse_h2load_output("h2load: connection refused", [])


@pytest.fixture
def h2c_server(workdir: Path) -> Iterator[int]:
    """nginx answering 13 B at / over prior-knowledge h2c (404 elsewhere)."""
    (port,) = procs.free_ports(1)
    server = f"""
    server {{
        listen 127.0.0.1:{port} http2;
        location = / {{ return 200 "Hello, World!"; }}
        location / {{ return 404; }}
    }}"""
    conf = write_nginx(workdir, "h2c", 1, server, upstream="")
    nginx = procs.start("nginx", ["nginx", "-c", str(conf)], "0", workdir / "h2c.log")
    try:
        load = Load(2, h2=True)
        ready = partial(h2_answers, port, load, b"Hello, World!")
        procs.wait_until(lambda: ready()[0], 10.0, "nginx to answer h2c", nginx)
        yield port
    finally:
        procs.stop(nginx)


def test_real_h2load_counts_successes_and_latencies(h2c_server: int, tmp_path: Path) -> None:
    result = run_h2load(Load(2, h2=True, streams=4), h2c_server, 1, tmp_path, "0")
    assert result.requests > 0 and result.errors == 0
    assert 0 < result.p50_us <= result.p99_us <= result.max_us


def test_real_h2load_counts_error_statuses(h2c_server: int, tmp_path: Path) -> None:
    result = run_h2load(Load(2, "/missing", h2=True), h2c_server, 1, tmp_path, "0")
    assert result.requests > 0
    assert result.non_2xx == result.requests
