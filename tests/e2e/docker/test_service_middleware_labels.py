"""contentType, retry (its v3.7 status) and buffering set by Docker labels, end to end:
real containers, a real `proxynow run` with `providers.docker`, real requests (see
test_e2e.py for the setup)."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.docker.conftest import Engine, Resources
from tests.support.proc import ProxynowProcess, poll, start_proxynow

TIMEOUT = 15.0
PAGE = "<html><body>typed by sniffing</body></html>"
# The image's busybox httpd, serving a CGI page that sends a length and no Content-Type.
UNTYPED = f"""mkdir -p /tmp/w/cgi-bin
cat > /tmp/w/cgi-bin/page <<'END'
#!/bin/sh
body='{PAGE}'
printf "Content-Length: %d\\r\\n\\r\\n%s" "${{#body}}" "$body"
END
chmod +x /tmp/w/cgi-bin/page
trap "exit 0" TERM INT
httpd -f -p 80 -h /tmp/w & wait
"""

# A CGI page that answers 503 the first time it is asked for a query, 200 after.
FLAKY = """mkdir -p /tmp/w/cgi-bin
cat > /tmp/w/cgi-bin/flaky <<'END'
#!/bin/sh
f="/tmp/w/seen-$QUERY_STRING"
if [ -e "$f" ]; then body="second"; st="200 OK"; else : > "$f"; body="first"; st="503 No"; fi
printf "Status: %s\\r\\nContent-Length: %d\\r\\n\\r\\n%s" "$st" "${#body}" "$body"
END
chmod +x /tmp/w/cgi-bin/flaky
trap "exit 0" TERM INT
httpd -f -p 80 -h /tmp/w & wait
"""

# A CGI page that says how many body bytes it read (busybox httpd takes no chunked body).
COUNT = """mkdir -p /tmp/w/cgi-bin
cat > /tmp/w/cgi-bin/count <<'END'
#!/bin/sh
body="got=$(head -c "${CONTENT_LENGTH:-0}" | wc -c)"
printf "Content-Length: %d\\r\\n\\r\\n%s" "${#body}" "$body"
END
chmod +x /tmp/w/cgi-bin/count
trap "exit 0" TERM INT
httpd -f -p 80 -h /tmp/w & wait
"""


@pytest.fixture(scope="module")
def proxy(
    docker_engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxynowProcess]:
    static = {
        "entryPoints": {"web": {"address": "127.0.0.1:0"}},
        "log": {"level": "WARN"},
        "providers": {
            "providersThrottleDuration": "10ms",
            "docker": {"constraints": f"Label(`proxynow.test`,`{docker_engine.prefix}`)"},
        },
    }
    process = start_proxynow(tmp_path_factory.mktemp("proxynow"), static)
    try:
        yield process
    finally:
        process.stop()


def get(proxy: ProxynowProcess, host: str, path: str) -> tuple[int, Any, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", proxy.ports["web"], timeout=5)
    try:
        connection.request("GET", path, headers={"Host": host})
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        connection.close()


def test_content_type_from_labels(proxy: ProxynowProcess, docker_resources: Resources) -> None:
    typed = f"{docker_resources.name('typed')}.test"
    plain = f"{docker_resources.name('plain')}.test"
    prefix = "proxynow.http"
    labels = {
        f"{prefix}.routers.typed.rule": f"Host(`{typed}`)",
        f"{prefix}.routers.typed.middlewares": "sniff",
        f"{prefix}.routers.typed.service": "untyped",
        f"{prefix}.routers.plain.rule": f"Host(`{plain}`)",
        f"{prefix}.routers.plain.service": "untyped",
        f"{prefix}.services.untyped.loadbalancer.server.port": "80",
        f"{prefix}.middlewares.sniff.contenttype": "true",
    }
    docker_resources.run(labels, command=["/bin/sh", "-c", UNTYPED])
    poll(lambda: get(proxy, typed, "/cgi-bin/page")[0] == 200, TIMEOUT, "the typed router")
    assert get(proxy, typed, "/cgi-bin/page") == (200, "text/html; charset=utf-8", PAGE.encode())
    assert get(proxy, plain, "/cgi-bin/page") == (200, None, PAGE.encode())


def test_retry_status_and_retry_expression_from_labels(
    proxy: ProxynowProcess, docker_resources: Resources
) -> None:
    retried = f"{docker_resources.name('retried')}.test"
    kept = f"{docker_resources.name('kept')}.test"
    plain = f"{docker_resources.name('plain')}.test"
    prefix = "proxynow.http"
    labels = {
        f"{prefix}.routers.retried.rule": f"Host(`{retried}`)",
        f"{prefix}.routers.retried.middlewares": "again",
        f"{prefix}.routers.retried.service": "flaky",
        f"{prefix}.routers.plain.rule": f"Host(`{plain}`)",
        f"{prefix}.routers.plain.service": "flaky",
        f"{prefix}.services.flaky.loadbalancer.server.port": "80",
        f"{prefix}.middlewares.again.retry.attempts": "2",
        f"{prefix}.middlewares.again.retry.status": "500-599",
        f"{prefix}.middlewares.again.retry.initialinterval": "10ms",
        f"{prefix}.middlewares.again.retry.timeout": "10s",
        f"{prefix}.routers.kept.rule": f"Host(`{kept}`)",
        f"{prefix}.routers.kept.middlewares": "kept",
        f"{prefix}.routers.kept.service": "flaky",
        f"{prefix}.middlewares.kept.buffering.retryexpression": "ResponseCode() == 503",
    }
    docker_resources.run(labels, command=["/bin/sh", "-c", FLAKY])
    poll(lambda: get(proxy, plain, "/cgi-bin/flaky?probe")[0] in (200, 503), TIMEOUT, "flaky")
    assert get(proxy, retried, "/cgi-bin/flaky?a")[::2] == (200, b"second")
    assert get(proxy, plain, "/cgi-bin/flaky?b")[::2] == (503, b"first")
    # buffering's retryExpression: a request with a body, buffered, sent again.
    connection = http.client.HTTPConnection("127.0.0.1", proxy.ports["web"], timeout=5)
    connection.request("PUT", "/cgi-bin/flaky?c", body=b"data", headers={"Host": kept})
    response = connection.getresponse()
    assert (response.status, response.read()) == (200, b"second")
    connection.close()


def post(proxy: ProxynowProcess, host: str, body: Any, chunked: bool) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", proxy.ports["web"], timeout=5)
    try:
        connection.request(
            "POST", "/cgi-bin/count", body=body, headers={"Host": host}, encode_chunked=chunked
        )
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_buffering_from_labels(proxy: ProxynowProcess, docker_resources: Resources) -> None:
    buffered = f"{docker_resources.name('buffered')}.test"
    prefix = "proxynow.http"
    labels = {
        f"{prefix}.routers.buffered.rule": f"Host(`{buffered}`)",
        f"{prefix}.routers.buffered.middlewares": "whole",
        f"{prefix}.services.counted.loadbalancer.server.port": "80",
        f"{prefix}.middlewares.whole.buffering.maxrequestbodybytes": "1000",
        f"{prefix}.middlewares.whole.buffering.memrequestbodybytes": "100",
    }
    docker_resources.run(labels, command=["/bin/sh", "-c", COUNT])
    poll(lambda: post(proxy, buffered, b"x", False)[0] == 200, TIMEOUT, "the buffered router")
    # Chunked from the client; the backend gets it whole, with a Content-Length.
    assert post(proxy, buffered, iter([b"y" * 300, b"z" * 400]), True) == (200, b"got=700")
    assert post(proxy, buffered, b"w" * 1001, False) == (413, b"Request Entity Too Large")
