"""`mirroring` services end to end: the client gets the main service's answer only; each
mirror gets a copy of its share of the requests (Traefik's counting: a mirror at
`percent` gets a copy while it has had fewer than `percent`% of them), body included unless
`mirrorBody: false`, none when the body is over `maxBodySize`; a mirror that never answers
delays nobody."""

from __future__ import annotations

import http.client
import http.server
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.proc import ProxynowProcess, poll, proxynow_factory

__all__ = ["proxynow_factory"]  # the fixture, re-exported for pytest

Start = Callable[..., ProxynowProcess]


class Recorder:
    """A backend on 127.0.0.1 that records (method, path, Host, body) and answers its name;
    with `hang`, it records and never answers."""

    def __init__(self, name: str, hang: bool = False) -> None:
        self.name = name
        self.seen: list[tuple[str, str, str, bytes]] = []
        self.heads: list[str] = []  # paths, as each head arrives (before its body)
        self.release = threading.Event()
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def answer(self) -> None:
                recorder.heads.append(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                recorder.seen.append((self.command, self.path, self.headers["Host"], body))
                if hang:
                    recorder.release.wait(60)
                reply = name.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            do_GET = do_POST = answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def recorders() -> Iterator[dict[str, Recorder]]:
    made = {
        "main": Recorder("main"),
        "all": Recorder("all"),
        "half": Recorder("half"),
        "bare": Recorder("bare"),
        "stuck": Recorder("stuck", hang=True),
    }
    yield made
    for recorder in made.values():
        recorder.close()


def lb(recorder: Recorder) -> dict[str, Any]:
    return {"loadBalancer": {"servers": [{"url": recorder.url}]}}


def config(recorders: dict[str, Recorder]) -> tuple[dict[str, Any], dict[str, Any]]:
    static = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}}
    services: dict[str, Any] = {name: lb(r) for name, r in recorders.items()}
    services["mirrored"] = {
        "mirroring": {
            "service": "main",
            "maxBodySize": 64,
            "mirrors": [{"name": "all", "percent": 100}, {"name": "half", "percent": 50}],
        }
    }
    services["no-body"] = {
        "mirroring": {
            "service": "main",
            "mirrorBody": False,
            "mirrors": [{"name": "bare", "percent": 100}],
        }
    }
    services["to-stuck"] = {
        "mirroring": {"service": "main", "mirrors": [{"name": "stuck", "percent": 100}]}
    }
    routers = {
        "mirrored": {"rule": "Host(`m.test`)", "service": "mirrored"},
        "no-body": {"rule": "Host(`bare.test`)", "service": "no-body"},
        "to-stuck": {"rule": "Host(`stuck.test`)", "service": "to-stuck"},
    }
    return static, {"http": {"routers": routers, "services": services}}


def request(port: int, host: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        method = "GET" if body is None else "POST"
        connection.request(method, path, body=body, headers={"Host": host})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_mirrors_get_their_share_and_the_client_only_the_main_answer(
    proxynow_factory: Start, recorders: dict[str, Recorder]
) -> None:
    port = proxynow_factory(*config(recorders), workers=1).ports["web"]
    for i in range(10):
        assert request(port, "m.test", f"/r{i}") == (200, b"main")
    assert request(port, "m.test", "/post", b"small body") == (200, b"main")
    assert request(port, "m.test", "/big", b"x" * 65) == (200, b"main")  # over maxBodySize

    poll(lambda: len(recorders["all"].seen) == 11, what="the 100% mirror's copies")
    paths = [path for _, path, _, _ in recorders["all"].seen]
    assert sorted(paths) == sorted([f"/r{i}" for i in range(10)] + ["/post"])
    assert ("POST", "/post", "m.test", b"small body") in recorders["all"].seen
    poll(lambda: len(recorders["half"].seen) == 6, what="the 50% mirror's copies")
    # Traefik's counting over the 12 requests: a copy while count * 100 < total * 50.
    assert sorted(p for _, p, _, _ in recorders["half"].seen) == sorted(
        ["/r0", "/r2", "/r4", "/r6", "/r8", "/post"]
    )
    assert len(recorders["main"].seen) == 12


def test_mirror_body_false_sends_the_head_only(
    proxynow_factory: Start, recorders: dict[str, Recorder]
) -> None:
    port = proxynow_factory(*config(recorders), workers=1).ports["web"]
    assert request(port, "bare.test", "/up", b"payload") == (200, b"main")
    poll(lambda: recorders["bare"].seen, what="the copy")
    assert recorders["bare"].seen == [("POST", "/up", "bare.test", b"")]
    assert recorders["main"].seen == [("POST", "/up", "bare.test", b"payload")]


def test_a_mirror_that_never_answers_delays_nobody(
    proxynow_factory: Start, recorders: dict[str, Recorder]
) -> None:
    port = proxynow_factory(*config(recorders), workers=1).ports["web"]
    for i in range(5):
        assert request(port, "stuck.test", f"/s{i}") == (200, b"main")
    poll(lambda: len(recorders["stuck"].seen) == 5, what="the copies to the stuck mirror")
    assert request(port, "m.test", "/after") == (200, b"main")


UPLOAD = 12 << 20  # 6 at once hold 72 MiB for the mirror: past a worker's 64 MiB budget


def test_concurrent_large_uploads_stay_within_the_worker_budget(
    proxynow_factory: Start, recorders: dict[str, Recorder]
) -> None:
    # The main server holds its answers until every upload reached it, so that all six
    # copies would be held at once; past the budget a copy is skipped, no upload fails,
    # and another client is served meanwhile.
    held = recorders["stuck"]
    services: dict[str, Any] = {name: lb(r) for name, r in recorders.items()}
    services["big"] = {
        "mirroring": {
            "service": "stuck",
            "maxBodySize": -1,
            "mirrors": [{"name": "all", "percent": 100}],
        }
    }
    routers = {
        "big": {"rule": "Host(`big.test`)", "service": "big"},
        "plain": {"rule": "Host(`plain.test`)", "service": "main"},
    }
    static = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}}
    port = proxynow_factory(
        static, {"http": {"routers": routers, "services": services}}, workers=1
    ).ports["web"]
    answers: list[tuple[int, bytes]] = []
    body = b"u" * UPLOAD

    def upload() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            connection.request("POST", "/up", body=body, headers={"Host": "big.test"})
            response = connection.getresponse()
            answers.append((response.status, response.read()))
        finally:
            connection.close()

    threads = [threading.Thread(target=upload) for _ in range(6)]
    for thread in threads:
        thread.start()
    poll(lambda: len(held.seen) == 6, 60, "every upload at the main server")
    assert request(port, "plain.test", "/by") == (200, b"main")  # served meanwhile
    held.release.set()
    for thread in threads:
        thread.join(60)
    assert answers == [(200, b"stuck")] * 6
    # A request after them all: its copy is sent after theirs were started.
    assert request(port, "big.test", "/marker") == (200, b"stuck")
    mirror = recorders["all"]
    poll(lambda: "/marker" in mirror.heads, 30, "the marker's copy")
    started = mirror.heads.count("/up")
    poll(lambda: sum(seen[1] == "/up" for seen in mirror.seen) == started, 30, "the copies")
    assert 1 <= started <= 5
    assert all(seen[3] == body for seen in mirror.seen if seen[1] == "/up")
