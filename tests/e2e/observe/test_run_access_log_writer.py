"""`proxynow run` end to end: the access log's writer (edge/core/linewriter.py) through a
running proxy, with the default fields (the fast path, edge/http/access_lines.py).

Every line of the requests served is in the file when proxynow stops, however soon after
them (the buffered batch is handed over and written on the way out). A writer that cannot
write (a FIFO opened but never read) costs lines, never requests: a flood of keep-alive
requests with long paths goes on at full speed while a second client is served promptly
every time, the lines past the bound (docs/logs.md, "How it is written") are counted in
the worker's `accessLog` counters and the warning, the worker's memory does not grow with
the flood, and once someone reads the FIFO, new requests are logged again.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import select
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from proxynow.edge.core.linewriter import MAX_BYTES
from tests.support.proc import HttpBackend, ProxynowProcess, poll, proxynow_factory

__all__ = ["proxynow_factory"]

Start = Callable[..., ProxynowProcess]
ENTRYPOINTS = {"web": {"address": "127.0.0.1:0"}}


@pytest.fixture
def backend() -> Iterator[HttpBackend]:
    with HttpBackend("b") as server:
        yield server


def _routes(backend: HttpBackend) -> dict[str, object]:
    return {
        "http": {
            "routers": {"app": {"rule": "Host(`app.test`)", "service": "app"}},
            "services": {"app": {"loadBalancer": {"servers": [{"url": backend.url}]}}},
        }
    }


def _keep_alive(port: int, paths: list[str]) -> list[int]:
    """Each path on one keep-alive connection, in order."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    statuses = []
    try:
        for path in paths:
            connection.request("GET", path, headers={"Host": "app.test"})
            response = connection.getresponse()
            response.read()
            statuses.append(response.status)
    finally:
        connection.close()
    return statuses


@pytest.mark.parametrize("buffering", [0, 100_000])
def test_every_line_is_written_when_proxynow_stops_right_after_the_requests(
    proxynow_factory: Start, backend: HttpBackend, tmp_path: Path, buffering: int
) -> None:
    """bufferingSize 0: the last batch waits 50 ms at most; 100,000: every line waits for
    the worker's tick or its end."""
    log = tmp_path / "access.log"
    access = {"filePath": str(log), "format": "json", "bufferingSize": buffering}
    static = {"entryPoints": ENTRYPOINTS, "accessLog": access}
    proxy = proxynow_factory(static, _routes(backend), workers=1)
    paths = [f"/stop/{i}" for i in range(500)]
    assert _keep_alive(proxy.ports["web"], paths) == [200] * 500
    assert proxy.stop() == 0  # at once: the last batch is still buffered in the worker
    data = log.read_bytes()
    assert data.endswith(b"\n")
    lines = [json.loads(line) for line in data.splitlines()]
    assert [line["RequestPath"] for line in lines] == paths
    assert [line["RequestCount"] for line in lines] == list(range(1, 501))


def test_a_stalled_writer_drops_counted_lines_and_never_slows_another_client(
    proxynow_factory: Start, backend: HttpBackend, tmp_path: Path
) -> None:
    fifo = tmp_path / "access.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # opened and never read: writes block
    try:
        static = {
            "entryPoints": ENTRYPOINTS,
            "log": {"level": "WARN"},
            "accessLog": {"filePath": str(fifo), "format": "json"},
        }
        proxy = proxynow_factory(static, _routes(backend), workers=1)
        port = proxy.ports["web"]
        (worker,) = proxy.worker_pids()
        rss_before = _rss_kib(worker)
        # 6 kB paths: ~6 kB lines, so the 16 MiB the worker keeps for its writer is
        # about 2,700 of them; the flood's 12,000 lines are four times that.
        pad = "p" * 6000
        batches = [[f"/flood/{c}/{i}/{pad}" for i in range(3000)] for c in range(4)]
        slowest = 0.0
        with ThreadPoolExecutor(4) as pool:
            flood = [pool.submit(_keep_alive, port, paths) for paths in batches]
            bystander = 0
            while not all(f.done() for f in flood):
                started = time.monotonic()
                assert _keep_alive(port, [f"/bystander/{bystander}"]) == [200]
                slowest = max(slowest, time.monotonic() - started)
                bystander += 1
            assert all(f.result() == [200] * 3000 for f in flood)
        assert bystander >= 1 and slowest < 2.0, (bystander, slowest)

        def counted() -> dict[str, int] | None:
            (answer,) = proxy.metrics()
            counters: dict[str, int] = answer["metrics"]["accessLog"]
            return counters if counters["dropped"] else None

        counters = poll(counted, 15, "the dropped lines counted")
        assert counters["dropped"] >= 12_000 - 2 * MAX_BYTES // 6000, counters
        assert counters["waiting"] <= MAX_BYTES
        poll(lambda: "lines dropped" in proxy.stderr(), 15, "the dropped-lines warning")
        # The flood's 70 MB of lines did not stay in the worker: what waits is bounded.
        assert _rss_kib(worker) - rss_before < 64 * 1024

        # Someone reads the FIFO now: the thread's write goes through, new lines follow.
        got = bytearray()
        stop = threading.Event()
        drain = threading.Thread(target=_drain, args=(reader, got, stop), daemon=True)
        drain.start()
        try:
            assert _keep_alive(port, ["/after/1", "/after/2"]) == [200, 200]
            poll(lambda: b'"RequestPath":"/after/2"' in got, 15, "the later lines in the FIFO")
        finally:
            stop.set()
            drain.join(5)
        assert proxy.stop() == 0
    finally:
        os.close(reader)


def _drain(fd: int, into: bytearray, stop: threading.Event) -> None:
    while not stop.is_set():
        readable, _, _ = select.select([fd], [], [], 0.1)
        if readable:
            with contextlib.suppress(BlockingIOError):
                into += os.read(fd, 1 << 20)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")
