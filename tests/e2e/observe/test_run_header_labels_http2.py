"""`proxynow run` end to end: `metrics.prometheus.headerLabels` over HTTP/2.

curl sends its requests over HTTP/2, with prior knowledge (h2c) and over TLS (ALPN h2),
several streams on one connection, each with an `X-Tenant` header (sent lowercase, as
HTTP/2 requires), the header twice or not at all; the exposition must count exactly what
was sent per value at the entrypoint, router and service levels (the first value of a
repeated header, an empty value without it, the unrouted requests at the entrypoint
only), as over HTTP/1.1 (test_run_header_labels.py). Each test runs on both HTTP/2 codecs.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme
from prometheus_client.parser import text_string_to_metric_families

from tests.support.h2codecs import CODECS, use_codec
from tests.support.proc import HttpBackend, ProxynowProcess, poll, proxynow_factory
from tests.support.tls import pem_pair

__all__ = ["proxynow_factory"]

Start = Callable[..., ProxynowProcess]


@pytest.fixture(autouse=True, params=CODECS)
def codec(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    use_codec(monkeypatch, request.param)
    name: str = request.param
    return name


@pytest.fixture
def backend() -> Iterator[HttpBackend]:
    with HttpBackend("b1") as server:
        yield server


def _curl(*args: str) -> list[str]:
    """The HTTP version and status of each URL curl fetched (one line each)."""
    done = subprocess.run(
        ["curl", "-sS", "--max-time", "20", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.split() if line.startswith("2/")]


def _h2load(*args: str) -> int:
    """The requests h2load saw succeed (2xx)."""
    done = subprocess.run(["h2load", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    found = re.search(r"status codes: (\d+) 2xx", done.stdout)
    assert found is not None, done.stdout
    return int(found.group(1))


def _tenants(proxy: ProxynowProcess, level: str) -> Counter[str]:
    """requests_total of one level by tenant label value (label sets summed)."""
    counts: Counter[str] = Counter()
    for family in text_string_to_metric_families(proxy.request("prometheus")["text"]):
        for sample in family.samples:
            if sample.name == f"proxynow_{level}_requests_total" and sample.value:
                counts[sample.labels["tenant"]] += int(sample.value)
    return counts


def test_header_labels_count_http2_streams_exactly(
    proxynow_factory: Start, backend: HttpBackend, tmp_path: Path
) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    cert, key = pem_pair(ca.issue_cert("app.test"))
    service = {"loadBalancer": {"servers": [{"url": backend.url}]}}
    static = {
        "entryPoints": {
            "web": {"address": "127.0.0.1:0"},
            "websecure": {"address": "127.0.0.1:0"},
        },
        "metrics": {
            "prometheus": {"addRoutersLabels": True, "headerLabels": {"tenant": "X-Tenant"}}
        },
    }
    dynamic = {
        "http": {
            "routers": {
                "plain": {"rule": "PathPrefix(`/app`)", "entryPoints": ["web"], "service": "app"},
                "secure": {
                    "rule": "PathPrefix(`/app`)",
                    "entryPoints": ["websecure"],
                    "service": "app",
                    "tls": {},
                },
            },
            "services": {"app": service},
        },
        "tls": {"certificates": [{"certFile": cert, "keyFile": key}]},
    }
    proxy = proxynow_factory(static, dynamic, workers=1)
    plain, secure = proxy.ports["web"], proxy.ports["websecure"]
    app = f"http://127.0.0.1:{plain}/app"
    # Five streams multiplexed on one h2c connection (h2load speaks h2c with prior knowledge).
    assert _h2load("-n", "5", "-c", "1", "-m", "5", "-H", "X-Tenant: a", app) == 5
    # curl 7.88 cannot reuse an h2c connection (curl/curl#10634): one URL per curl.
    h2c = ["--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_version}/%{http_code}\n"]
    for _ in range(3):
        assert _curl(*h2c, app) == ["2/200"]  # no header: the empty value
    # A repeated header: its first value labels the request, as over HTTP/1.1.
    for _ in range(2):
        assert _curl(*h2c, "-H", "X-Tenant: b", "-H", "X-Tenant: z", app) == ["2/200"]
    # Over TLS (ALPN h2) curl sends its URLs as streams of one connection.
    written = "\n%{http_version}/%{http_code}\n"  # after the body (it has no newline)
    tls = ["--http2", "--cacert", str(tmp_path / "ca.pem"), "-w", written]
    tls += ["--resolve", f"app.test:{secure}:127.0.0.1", "-H", "X-Tenant: b"]
    secure_urls = [f"https://app.test:{secure}/app/{i}" for i in range(4)]
    assert _curl(*tls, *secure_urls) == ["2/200"] * 4
    # No router takes this path: counted at the entrypoint only.
    for _ in range(2):
        unrouted_url = f"http://127.0.0.1:{plain}/nowhere"
        assert _curl(*h2c, "-H", "X-Tenant: a", unrouted_url) == ["2/404"]

    routed = Counter({"a": 5, "": 3, "b": 6})
    unrouted = Counter({"a": 2})

    def exact() -> bool:
        return (
            _tenants(proxy, "entrypoint") == routed + unrouted
            and _tenants(proxy, "router") == routed
            and _tenants(proxy, "service") == routed
        )

    poll(exact, 20, f"the exposition to count {routed} routed, {unrouted} unrouted over HTTP/2")
    assert "z" not in _tenants(proxy, "entrypoint")
    assert proxy.stop() == 0
