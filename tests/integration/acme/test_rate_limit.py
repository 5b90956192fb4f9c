"""A CA that answers 429 with Retry-After: the manager waits as long as it is told.

Pebble has no rate limits, so this is a minimal fake ACME server over plain HTTP on
127.0.0.1: a directory, nonces, accounts, and a newOrder that is always rate limited.
"""

from __future__ import annotations

import asyncio
import http.server
import itertools
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from proxynow.acme.manager import AcmeManager
from proxynow.ipc.challenges import ChallengeSet
from tests.support.acme import RecordingSink, acme_static, router_snapshot, until


class RateLimitedCA:
    def __init__(self) -> None:
        nonces = itertools.count()
        self.orders = 0
        ca = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _reply(self, status: int, body: object, **headers: str) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Replay-Nonce", f"nonce{next(nonces)}")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name.replace("_", "-"), value)
                self.end_headers()
                self.wfile.write(data)

            def do_HEAD(self) -> None:
                self._reply(200, None)

            def do_GET(self) -> None:
                base = f"http://127.0.0.1:{ca.port}"
                directory = {"newNonce": f"{base}/nonce", "newAccount": f"{base}/acct",
                             "newOrder": f"{base}/order"}  # fmt: skip
                self._reply(200, directory, Content_Type="application/json")

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == "/acct":
                    self._reply(201, {"status": "valid"}, Content_Type="application/json",
                                Location=f"http://127.0.0.1:{ca.port}/acct/1")  # fmt: skip
                    return
                ca.orders += 1
                problem = {"type": "urn:ietf:params:acme:error:rateLimited", "detail": "slow down"}
                self._reply(429, problem, Content_Type="application/problem+json",
                            Retry_After="7")  # fmt: skip

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def rate_limited_ca() -> Iterator[RateLimitedCA]:
    ca = RateLimitedCA()
    try:
        yield ca
    finally:
        ca.close()


async def test_retry_after_sets_the_next_attempt(
    rate_limited_ca: RateLimitedCA, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    static = acme_static(f"http://127.0.0.1:{rate_limited_ca.port}/dir", tmp_path / "acme.json")
    published: list[ChallengeSet] = []
    manager = AcmeManager(static, published.append)
    manager.on_snapshot(router_snapshot("Host(`limited.example.com`)"))
    task = asyncio.create_task(manager.run(RecordingSink()))
    try:
        await until(
            lambda: any("cannot get a certificate" in r.getMessage() for r in caplog.records),
            what="the failure",
        )
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    (failure,) = [r.getMessage() for r in caplog.records if "cannot get" in r.getMessage()]
    assert "(attempt 1)" in failure and "slow down" in failure
    assert "retrying in 7s" in failure  # Retry-After, not the table's first 1 s
    assert rate_limited_ca.orders == 1
    assert published == []
