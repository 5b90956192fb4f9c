"""`proxynow run` end to end: the Prometheus exposition counts exactly what was sent.

Two workers serve requests with several methods and status codes on new connections (so
both workers get some); the rendered families (the control socket's `prometheus` op, the
same text `GET /metrics` serves) must hold exactly those counts at every level, and still
hold them after one worker is killed by its PID and replaced, and grow by exactly what is
sent afterwards.
"""

from __future__ import annotations

import http.client
import http.server
import os
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.proc import ProxynowProcess, poll, proxynow_factory

__all__ = ["proxynow_factory"]

Start = Callable[..., ProxynowProcess]
# (method, path, extra headers) -> the backend answers /code/<n> with status n.
Request = tuple[str, str, dict[str, str]]
Key = tuple[str, str, str]  # (code, method, protocol)


class StatusBackend:
    """Answers any method on /code/<n> with status n and a small body."""

    def __init__(self) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                status = int(self.path.rsplit("/", 1)[-1])
                body = b"" if status == 204 else b"ok"  # a 204 has no body
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


@pytest.fixture
def backend() -> Iterator[StatusBackend]:
    server = StatusBackend()
    yield server
    server.close()


def _send(port: int, requests: list[Request], host: str = "app.test") -> Counter[Key]:
    """Each request on a new connection; what the proxy answered, as label values."""
    sent: Counter[Key] = Counter()
    for method, path, headers in requests:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        try:
            body = b"hello" if method in ("POST", "PUT") else None
            connection.request(method, path, body, {"Host": host, "Connection": "close", **headers})
            response = connection.getresponse()
            response.read()
        finally:
            connection.close()
        protocol = "sse" if headers.get("Accept") == "text/event-stream" else "http"
        sent[str(response.status), method, protocol] += 1
    return sent


def _batch(rounds: int) -> list[Request]:
    one = [
        ("GET", "/code/200", {}),
        ("GET", "/code/200", {"Accept": "text/event-stream"}),
        ("POST", "/code/201", {}),
        ("PUT", "/code/204", {}),
        ("DELETE", "/code/404", {}),
        ("GET", "/code/503", {}),
    ]
    return one * rounds


def _families(proxy: ProxynowProcess) -> dict[str, Counter[tuple[Any, ...]]]:
    """Family sample name -> {label values (code, method, protocol, own...): value}."""
    text = proxy.request("prometheus")["text"]
    found: dict[str, Counter[tuple[Any, ...]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = dict(sample.labels)
            values = tuple(labels.pop(n, "") for n in ("code", "method", "protocol"))
            found.setdefault(sample.name, Counter())[(*values, *sorted(labels.items()))] = (
                sample.value
            )
    return found


def _requests(
    found: dict[str, Counter[tuple[Any, ...]]], level: str, own: tuple[Any, ...]
) -> Counter[Key]:
    counts: Counter[Key] = Counter()
    for (code, method, protocol, *labels), value in found[
        f"proxynow_{level}_requests_total"
    ].items():
        if tuple(labels) == own and value:
            counts[code, method, protocol] = int(value)
    return counts


def _expect(proxy: ProxynowProcess, routed: Counter[Key], unrouted: Counter[Key]) -> None:
    """Poll until the entrypoint, router and service families hold exactly these counts."""
    entrypoint = (("entrypoint", "web"),)
    router = (("router", "app@file"), ("service", "app@file"))
    service = (("service", "app@file"),)

    def matches() -> bool:
        found = _families(proxy)
        return (
            _requests(found, "entrypoint", entrypoint) == routed + unrouted
            and _requests(found, "router", router) == routed
            and _requests(found, "service", service) == routed
        )

    poll(matches, 20, f"the exposition to count {routed} routed and {unrouted} unrouted")


def test_counts_exactly_across_workers_and_a_worker_restart(
    proxynow_factory: Start, backend: StatusBackend
) -> None:
    static = {
        "entryPoints": {"web": {"address": "127.0.0.1:0"}},
        "metrics": {"prometheus": {"addRoutersLabels": True}},
    }
    dynamic = {
        "http": {
            "routers": {"app": {"rule": "Host(`app.test`)", "service": "app"}},
            "services": {"app": {"loadBalancer": {"servers": [{"url": backend.url}]}}},
        }
    }
    proxy = proxynow_factory(static, dynamic, workers=2)
    port = proxy.ports["web"]
    routed = _send(port, _batch(8))
    unrouted = _send(port, [("GET", "/", {})] * 3, host="nowhere.test")
    assert len(routed) == 6 and set(routed.values()) == {8}, routed  # six label sets
    assert unrouted == Counter({("404", "GET", "http"): 3})
    _expect(proxy, routed, unrouted)

    # Both workers served some: the totals above are sums over processes.
    per_worker = {w["pid"]: _served(w["metrics"]) for w in proxy.metrics()}
    assert len(per_worker) == 2 and all(per_worker.values()), per_worker
    found = _families(proxy)
    histogram = found["proxynow_router_request_duration_seconds_count"]
    assert sum(histogram.values()) == sum(routed.values())
    buckets = found["proxynow_service_request_duration_seconds_bucket"]
    les = {dict(key[3:])["le"] for key in buckets}
    assert les == {"0.1", "0.3", "1.2", "5", "+Inf"}
    assert _bytes(found, "requests") == 5 * 16  # the POST and PUT bodies
    assert _gauge(found, "proxynow_config_reloads_total") >= 1

    # Kill the busier worker by its PID; the supervisor replaces it.
    before = _counters(proxy)
    victim = max(per_worker, key=lambda pid: per_worker[pid])
    os.kill(victim, signal.SIGKILL)

    def replaced() -> bool:
        workers = proxy.status()["workers"]
        return victim not in {w["pid"] for w in workers} and all(w["ready"] for w in workers)

    poll(replaced, 30, "the killed worker to be replaced")
    _expect(proxy, routed, unrouted)  # nothing went back
    after = _counters(proxy)
    _never_less(before, after)

    more = _send(port, _batch(3))
    _expect(proxy, routed + more, unrouted)
    _never_less(after, _counters(proxy))
    assert proxy.stop() == 0


def _counters(proxy: ProxynowProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every counter-like sample (totals, histogram buckets, counts and sums) by labels."""
    found = {}
    for family in text_string_to_metric_families(proxy.request("prometheus")["text"]):
        for sample in family.samples:
            name = sample.name
            if name.endswith(("_total", "_bucket", "_count", "_sum")):
                found[name, tuple(sorted(sample.labels.items()))] = sample.value
    return found


def _never_less(
    before: dict[tuple[str, tuple[tuple[str, str], ...]], float],
    after: dict[tuple[str, tuple[tuple[str, str], ...]], float],
) -> None:
    """No sample of `before` is missing or lower in `after` (across the restart)."""
    lower = {
        key: (value, after.get(key)) for key, value in before.items() if after.get(key, -1) < value
    }
    assert not lower, lower


def _served(metrics: dict[str, Any]) -> int:
    router = metrics["routers"].get("app@file", {"codes": {}})
    return sum(router["codes"].values())


def _bytes(found: dict[str, Counter[tuple[Any, ...]]], which: str) -> int:
    family = found[f"proxynow_service_{which}_bytes_total"]
    return int(sum(family.values()))


def _gauge(found: dict[str, Counter[tuple[Any, ...]]], name: str) -> float:
    return sum(found[name].values())
