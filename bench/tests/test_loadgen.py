"""wrk scripts, command lines and results, checked against a real wrk and a real nginx."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.harness import Harness
from bench.loadgen import RESULT_MARKER, Load, lua_script, parse_wrk_output, run_wrk, wrk_argv
from bench.procs import free_ports


def test_script_rotates_hosts_from_precomputed_requests() -> None:
    script = lua_script(Load(10, hosts=("a.bench", "b.bench")))
    assert 'local hosts = {"a.bench", "b.bench"}' in script
    assert "wrk.format(nil, nil, {Host = host})" in script
    assert "cursor % #hosts + 1" in script
    assert "BENCH_RESULT" in script


def test_post_script_sends_64_kib_bodies() -> None:
    script = lua_script(Load(10, "/upload", post=True))
    assert 'wrk.method = "POST"' in script
    assert 'string.rep("x", 65536)' in script


def test_connection_close_is_a_header_on_the_command_line(tmp_path: Path) -> None:
    argv = wrk_argv(Load(50, close=True), 8080, 2.0, tmp_path / "s.lua", threads=1)
    assert argv[:4] == ["wrk", "-t1", "-c50", "-d2s"]
    assert argv[-3:] == ["-H", "Connection: close", "http://127.0.0.1:8080/"]


def test_parse_reads_the_result_line() -> None:
    out = (
        "Running 2s test @ http://127.0.0.1:1/\n"
        + RESULT_MARKER
        + '{"requests": 2000, "duration_us": 2000000, "bytes": 1, "p50_us": 300, "p99_us": 900,'
        ' "max_us": 1200, "connect": 1, "read": 2, "write": 0, "status": 5, "timeout": 3}\n'
    )
    result = parse_wrk_output(out)
    assert (result.rps, result.p50_us, result.p99_us) == (1000.0, 300.0, 900.0)
    assert (result.socket_errors, result.non_2xx, result.errors) == (6, 5, 11)


def test_parse_without_a_result_line_says_so() -> None:
    with pytest.raises(ValueError, match="no BENCH_RESULT line"):
        parse_wrk_output("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_real_wrk_counts_successes(harness: Harness, tmp_path: Path) -> None:
    result = run_wrk(Load(4, "/16k"), harness.backend_port, 1, tmp_path / "ok.lua", "0")
    assert result.requests > 0
    assert result.errors == 0
    assert result.bytes >= result.requests * 16 * 1024


def test_real_wrk_counts_error_statuses(harness: Harness, tmp_path: Path) -> None:
    result = run_wrk(Load(4, "/missing"), harness.backend_port, 1, tmp_path / "404.lua", "0")
    assert result.requests > 0
    assert result.non_2xx == result.requests


def test_wrk_that_cannot_connect_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="unable to connect"):
        run_wrk(Load(2), free_ports(1)[0], 1, tmp_path / "refused.lua", "0")
