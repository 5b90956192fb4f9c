"""The access log of a running `proxynow run`: two workers writing one file, every request
once and every line whole; every format (common, genericCLF, json) with the default fields
writes Traefik's line shape for routed and unrouted requests; SIGUSR1 reopens the file
(logrotate); a writer that cannot write (a FIFO nobody reads) costs lines, never requests."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.support.proc import HttpBackend, ProxynowProcess, http_get, poll, proxynow_factory

__all__ = ["proxynow_factory"]

Start = Callable[..., ProxynowProcess]
ENTRYPOINTS = {"web": {"address": "127.0.0.1:0"}}


@pytest.fixture
def backend() -> Iterator[HttpBackend]:
    with HttpBackend("b") as server:
        yield server


def routes(backend: HttpBackend) -> dict[str, object]:
    return {
        "http": {
            "routers": {"app": {"rule": "Host(`app.test`)", "service": "app"}},
            "services": {"app": {"loadBalancer": {"servers": [{"url": backend.url}]}}},
        }
    }


def json_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    data = path.read_bytes()
    assert not data or data.endswith(b"\n"), "a partial last line"
    return [json.loads(line) for line in data.splitlines()]


def send_all(port: int, paths: list[str]) -> list[int]:
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda path: http_get(port, path)[0], paths))


def test_two_workers_log_every_request_once_in_whole_lines(
    proxynow_factory: Start, backend: HttpBackend, tmp_path: Path
) -> None:
    log = tmp_path / "logs" / "access.log"
    static = {
        "entryPoints": ENTRYPOINTS,
        "accessLog": {
            "filePath": str(log),
            "format": "json",
            "bufferingSize": 5,
            "fields": {"headers": {"names": {"X-Pad": "keep"}}},
        },
    }
    proxy = proxynow_factory(static, routes(backend), workers=2)
    paths = [f"/req/{i}" for i in range(300)]
    assert send_all(proxy.ports["web"], paths) == [200] * 300

    # bufferingSize 5: the last few lines of each worker wait for its tick (<= 1 s).
    poll(lambda: len(json_lines(log)) >= 300, 15, "300 access-log lines")
    lines = json_lines(log)
    assert sorted(line["RequestPath"] for line in lines) == sorted(paths)
    assert {line["RouterName"] for line in lines} == {"app@file"}
    assert all(
        line["DownstreamStatus"] == 200 and line["ServiceURL"] == backend.url for line in lines
    )
    # Both workers wrote (each counts its requests from 1), to the one file.
    assert [line["RequestCount"] for line in lines].count(1) == 2


def test_without_a_file_path_lines_go_to_stdout(
    proxynow_factory: Start, backend: HttpBackend
) -> None:
    static = {"entryPoints": ENTRYPOINTS, "accessLog": {"format": "genericCLF"}}
    proxy = proxynow_factory(static, routes(backend), workers=2)  # stdout: its stderr.log
    assert send_all(proxy.ports["web"], ["/to/stdout"]) == [200]
    poll(lambda: '"GET /to/stdout HTTP/1.1" 200 ' in proxy.stderr(), what="the line on stdout")


def test_sigusr1_reopens_the_file_after_logrotate_moved_it(
    proxynow_factory: Start, backend: HttpBackend, tmp_path: Path
) -> None:
    log = tmp_path / "access.log"
    static = {"entryPoints": ENTRYPOINTS, "accessLog": {"filePath": str(log), "format": "json"}}
    proxy = proxynow_factory(static, routes(backend), workers=2)
    assert send_all(proxy.ports["web"], [f"/before/{i}" for i in range(20)]) == [200] * 20
    poll(lambda: len(json_lines(log)) == 20, what="the first 20 lines")
    rotated = tmp_path / "access.log.1"
    log.rename(rotated)
    proxy.signal(signal.SIGUSR1)

    # Each worker reopens when its signal arrives; until then it appends to the moved file.
    # Batches of 20 new connections (spread over both workers) until one lands whole in
    # the new file.
    sent: list[str] = []

    def a_batch_went_to_the_new_file() -> bool:
        batch = [f"/after/{len(sent) + i}" for i in range(20)]
        sent.extend(batch)
        assert send_all(proxy.ports["web"], batch) == [200] * 20
        poll(lambda: _logged(log, rotated) == 20 + len(sent), what="the batch's lines")
        return set(batch) <= {line["RequestPath"] for line in json_lines(log)}

    poll(a_batch_went_to_the_new_file, 15, "a batch logged in the new file")
    old = [line["RequestPath"] for line in json_lines(rotated)]
    new = [line["RequestPath"] for line in json_lines(log)]
    assert all(path.startswith("/after/") for path in new)
    assert sorted(old + new) == sorted([f"/before/{i}" for i in range(20)] + sent)
    assert proxy.process.poll() is None  # SIGUSR1 stopped nothing


def _logged(*paths: Path) -> int:
    return sum(len(json_lines(path)) for path in paths)


def test_a_fifo_nobody_reads_does_not_stall_requests(
    proxynow_factory: Start, backend: HttpBackend, tmp_path: Path
) -> None:
    fifo = tmp_path / "access.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # opened and never read: writes block
    try:
        static = {
            "entryPoints": ENTRYPOINTS,
            "log": {"level": "WARN"},
            "accessLog": {"filePath": str(fifo), "fields": {"headers": {"defaultMode": "keep"}}},
        }
        proxy = proxynow_factory(static, routes(backend), workers=1)
        # 30 kB lines (the User-Agent is in a common line): the 64 kB pipe is full at once,
        # and the worker holds at most 16 MiB for its writer, about 560 of them.
        agent = "a" * 30_000
        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda i: _get(proxy.ports["web"], i, agent), range(1000)))
        assert statuses == [200] * 1000
        assert time.monotonic() - started < 60
        poll(lambda: "lines dropped" in proxy.stderr(), 15, "the dropped-lines warning")
        assert http_get(proxy.ports["web"])[0] == 200
    finally:
        os.close(reader)


def _get(port: int, i: int, agent: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        headers = {"Host": "app.test", "User-Agent": agent, "Connection": "close"}
        connection.request("GET", f"/big/{i}", headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


# One line per format, with the default fields (the fast path): what each format's line
# must be for a routed request and for a 404, Traefik's shapes (docs/logs.md "Formats").
_CLF_HEAD = r"127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "
_SHAPES = {
    "genericCLF": (
        _CLF_HEAD + r'"GET (/fmt/\d+) HTTP/1\.1" 200 \d+ "-" "-"',
        _CLF_HEAD + r'"GET (/none/\d+) HTTP/1\.1" 404 \d+ "-" "-"',
    ),
    "common": (
        _CLF_HEAD + r'"GET (/fmt/\d+) HTTP/1\.1" 200 \d+ "-" "-" (\d+) "app@file" "{url}" \d+ms',
        _CLF_HEAD + r'"GET (/none/\d+) HTTP/1\.1" 404 \d+ "-" "-" (\d+) "-" "-" \d+ms',
    ),
}


@pytest.mark.parametrize("fmt", ["common", "genericCLF", "json"])
def test_every_format_with_default_fields_over_two_workers(
    proxynow_factory: Start, backend: HttpBackend, tmp_path: Path, fmt: str
) -> None:
    log = tmp_path / "access.log"
    static = {"entryPoints": ENTRYPOINTS, "accessLog": {"filePath": str(log), "format": fmt}}
    proxy = proxynow_factory(static, routes(backend), workers=2)
    port = proxy.ports["web"]
    routed = [f"/fmt/{i}" for i in range(60)]
    assert send_all(port, routed) == [200] * 60
    missing = [f"/none/{i}" for i in range(5)]
    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(lambda p: http_get(port, p, host="nowhere.test")[0], missing))
    assert statuses == [404] * 5

    def complete() -> list[bytes] | None:
        data = log.read_bytes() if log.exists() else b""
        lines = [line for line in data.splitlines() if b"/fmt/" in line or b"/none/" in line]
        return lines if len(lines) == 65 and data.endswith(b"\n") else None

    lines = [line.decode() for line in poll(complete, 15, "65 access-log lines")]
    if fmt == "json":
        records = [json.loads(line) for line in lines]
        assert sorted(r["RequestPath"] for r in records) == sorted(routed + missing)
        for record in records:
            ok = record["RequestPath"].startswith("/fmt/")
            assert record["DownstreamStatus"] == (200 if ok else 404)
            assert record.get("RouterName") == ("app@file" if ok else None)
            assert record["entryPointName"] == "web" and record["level"] == "info"
        counts = [r["RequestCount"] for r in records]
    else:
        found: list[str] = []
        counts = []
        for line in lines:
            shapes = [shape.replace("{url}", re.escape(backend.url)) for shape in _SHAPES[fmt]]
            match = next((m for s in shapes if (m := re.fullmatch(s, line))), None)
            assert match is not None, line
            found.append(match.group(1))
            if fmt == "common":
                counts.append(int(match.group(2)))
        assert sorted(found) == sorted(routed + missing)
    if counts:  # both workers wrote to the one file, each counting from 1
        assert counts.count(1) == 2, sorted(counts)[:5]
