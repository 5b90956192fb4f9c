"""Big and junk dynamic files through a real `proxynow run` (issue 15, item 6).

- 20,000 routers written into a running proxy while a poller keeps asking an existing
  router: no answer takes 100 ms or more (the worker builds the graph a slice at a time),
  and the new routers serve afterwards;
- a file over the size limit is refused with one log line, the old configuration serves;
- a junk file (thousands of unknown keys) logs a bounded number of lines and the next real
  change still serves at once;
- emptying the file warns, once, that its routers are removed.
"""

from __future__ import annotations

import http.client
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.proc import HttpBackend, ProxynowProcess, http_get, poll, proxynow_factory

__all__ = ["proxynow_factory"]

Start = Callable[..., ProxynowProcess]
STATIC: dict[str, Any] = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}}
ROUTERS = 20_000
LIMIT = 0.1  # seconds: no answer may take this long while the big file is applied


@pytest.fixture
def backend() -> Iterator[HttpBackend]:
    with HttpBackend("b1") as server:
        yield server


def small(backend: HttpBackend, *hosts: str) -> dict[str, Any]:
    """Router `app` (host app.test), plus one router per host in `hosts`."""
    routers = {"app": {"rule": "Host(`app.test`)", "service": "app"}}
    for host in hosts:
        routers[host.replace(".", "-")] = {"rule": f"Host(`{host}`)", "service": "app"}
    service = {"loadBalancer": {"servers": [{"url": backend.url}]}}
    return {"http": {"routers": routers, "services": {"app": service}}}


def big_text(backend: HttpBackend, routers: int) -> str:
    """Router `app` and `routers` host-keyed ones, rendered as text (yaml.safe_dump of
    20,000 routers takes seconds, which the poller's process would spend meanwhile)."""
    lines = [
        "http:",
        "  routers:",
        "    app:",
        "      rule: Host(`app.test`)",
        "      service: app",
    ]
    for i in range(routers):
        lines += [f"    r{i:05d}:", f"      rule: Host(`h{i:05d}.big`)", "      service: app"]
    lines += ["  services:", "    app:", "      loadBalancer:", "        servers:"]
    lines.append(f"          - url: {backend.url}")
    return "\n".join(lines) + "\n"


def write_text(proxy: ProxynowProcess, text: str) -> None:
    """Replace the dynamic file atomically with `text`."""
    assert proxy.dynamic_path is not None
    temporary = proxy.dynamic_path.with_suffix(".tmp")
    temporary.write_text(text)
    temporary.replace(proxy.dynamic_path)


class Poller(threading.Thread):
    """GET / for app.test on one keep-alive connection in a loop; the slowest answer."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.slowest = 0.0
        self.count = 0
        self.errors: list[object] = []

    def run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        try:
            while not self.stop.is_set():
                started = time.perf_counter()
                connection.request("GET", "/", headers={"Host": "app.test"})
                response = connection.getresponse()
                body = response.read()
                self.slowest = max(self.slowest, time.perf_counter() - started)
                self.count += 1
                if (response.status, body) != (200, b"b1 /"):
                    self.errors.append((response.status, body))
                self.stop.wait(0.005)  # pacing between polls, not a readiness wait
        except (OSError, http.client.HTTPException) as exc:
            self.errors.append(exc)
        finally:
            connection.close()


def test_20000_new_routers_never_stall_serving(
    proxynow_factory: Start, backend: HttpBackend
) -> None:
    proxy = proxynow_factory(STATIC, small(backend), workers=1)
    port = proxy.ports["web"]
    version = proxy.wait_serving(1)
    text = big_text(backend, ROUTERS)
    poller = Poller(port)
    poller.start()
    try:
        poll(lambda: poller.count >= 20, 10, "the poller's first answers")
        warm = poller.slowest
        poller.slowest = 0.0
        written = time.monotonic()
        write_text(proxy, text)
        last = f"h{ROUTERS - 1:05d}.big"
        poll(lambda: http_get(port, host=last)[0] == 200, 60, "the last new router")
        serving = time.monotonic() - written
        proxy.wait_serving(version + 1, timeout=60)
    finally:
        poller.stop.set()
        poller.join(30)
    worker = proxy.status()["workers"][0]
    print(
        f"\n{ROUTERS} routers served {serving:.1f} s after the write; slowest answer "
        f"meanwhile {poller.slowest * 1000:.1f} ms over {poller.count} polls (before the "
        f"write: {warm * 1000:.1f} ms); the worker's longest slice "
        f"{worker['stall_ms_recent'][-1]:.1f} ms"
    )
    assert poller.errors == []
    assert poller.slowest < LIMIT, f"an answer took {poller.slowest * 1000:.0f} ms"
    assert http_get(port, host="h00000.big")[0] == 200
    assert http_get(port, host="app.test") == (200, b"b1 /")
    assert proxy.stop() == 0


def test_a_file_over_the_size_limit_is_refused_and_the_old_one_serves(
    proxynow_factory: Start, backend: HttpBackend
) -> None:
    proxy = proxynow_factory(STATIC, small(backend), workers=1)
    port = proxy.ports["web"]
    version = proxy.wait_serving(1)
    assert proxy.dynamic_path is not None
    # 11 MB: over the default limit of 10 MiB (providers.file.maxFileBytes).
    write_text(proxy, "# padding\n" * 1_100_000 + "http: {}\n")
    refused = re.compile(r"over the limit of 10485760 \(providers\.file\.maxFileBytes\)")
    poll(lambda: refused.search(proxy.stderr()), 20, "the refusal in the log")
    assert len(refused.findall(proxy.stderr())) == 1
    assert http_get(port, host="app.test") == (200, b"b1 /")
    assert proxy.status()["version"] == version
    proxy.write_dynamic(small(backend, "new.test"))
    proxy.wait_serving(version + 1)
    assert http_get(port, host="new.test") == (200, b"b1 /")
    assert proxy.stop() == 0


def test_a_junk_file_logs_a_bounded_number_of_lines(
    proxynow_factory: Start, backend: HttpBackend
) -> None:
    proxy = proxynow_factory(STATIC, small(backend), workers=1)
    port = proxy.ports["web"]
    version = proxy.wait_serving(1)
    lines_before = len(proxy.stderr().splitlines())
    # Unknown keys inside objects: errors (at the root of a file they only warn).
    routers = "".join(f"    r{i:06d}: {{junk{i}: value{i}}}\n" for i in range(20_000))
    write_text(proxy, "http:\n  routers:\n" + routers)
    summary = "20,000 errors in all, only the first 10 are shown"
    poll(lambda: summary in proxy.stderr(), 60, "the summary line")
    assert http_get(port, host="app.test") == (200, b"b1 /")
    proxy.write_dynamic(small(backend, "after.test"))
    proxy.wait_serving(version + 1, timeout=30)
    assert http_get(port, host="after.test") == (200, b"b1 /")
    new_lines = proxy.stderr().splitlines()[lines_before:]
    junk_lines = [line for line in new_lines if "junk" in line or "errors in all" in line]
    assert len(junk_lines) == 11, junk_lines
    assert len(new_lines) <= 13, new_lines  # the 11, and "errors cleared" at INFO at most
    assert proxy.stop() == 0


def test_emptying_the_file_warns_once_that_its_routers_are_removed(
    proxynow_factory: Start, backend: HttpBackend
) -> None:
    static = {**STATIC, "log": {"level": "WARN"}}
    proxy = proxynow_factory(static, small(backend, "two.test"), workers=1)
    port = proxy.ports["web"]
    version = proxy.wait_serving(1)
    assert proxy.dynamic_path is not None
    proxy.dynamic_path.write_text("")  # in place, as an editor's truncate would leave it
    warning = f"{proxy.dynamic_path} is empty now: its 2 routers are removed"
    poll(lambda: warning in proxy.stderr(), 20, "the warning")
    proxy.wait_serving(version + 1)
    assert http_get(port, host="app.test")[0] == 404
    proxy.dynamic_path.write_text("# still nothing\n")
    proxy.dynamic_path.write_text("")
    # Two more reads of an empty file, and their settle re-reads: still one warning.
    poll(lambda: proxy.stderr().count("routers are removed") >= 1, 5, "the log")
    time.sleep(2.5)  # the settle time (1 s) of those reads has passed: nothing more came
    assert proxy.stderr().count("routers are removed") == 1
    assert "the provider has no router left" in proxy.stderr()
    assert proxy.stop() == 0
