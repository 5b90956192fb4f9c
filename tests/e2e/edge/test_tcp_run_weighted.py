"""TCP weighted balancing end to end: a real `proxynow run` (one worker, so one balancer
cursor) between real sockets; each backend names itself, so the names read back are the
order in which the proxy picked the servers."""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.proc import ProxynowProcess, ThreadedServer, start_proxynow


class Named:
    """Sends its name and closes."""

    def __init__(self, name: str) -> None:
        self.name = name.encode()

    def __call__(self, conn: socket.socket) -> None:
        conn.sendall(self.name)
        conn.close()


@pytest.fixture(scope="module")
def backends() -> Iterator[dict[str, ThreadedServer]]:
    servers = {name: ThreadedServer(Named(name)) for name in ("a", "b", "c", "d", "e")}
    yield servers
    for server in servers.values():
        server.close()


@pytest.fixture(scope="module")
def proxy(
    tmp_path_factory: pytest.TempPathFactory, backends: dict[str, ThreadedServer]
) -> Iterator[ProxynowProcess]:
    def weighted(**weights: int) -> dict[str, object]:
        return {"weighted": {"services": [{"name": n, "weight": w} for n, w in weights.items()]}}

    def router(entrypoint: str, service: str) -> dict[str, object]:
        return {"entryPoints": [entrypoint], "rule": "HostSNI(`*`)", "service": service}

    dynamic = {
        "tcp": {
            "routers": {"flat": router("flat", "flat"), "nested": router("nested", "outer")},
            "services": {
                "flat": weighted(a=3, b=1),
                "outer": weighted(a=2, inner=1, unused=0),
                "inner": weighted(c=1, trio=1),
                **{
                    name: {"loadBalancer": {"servers": [{"address": backends[name].address}]}}
                    for name in ("a", "b", "c")
                },
                # Three servers in one service: they take turns in their listed order.
                "trio": {
                    "loadBalancer": {
                        "servers": [{"address": backends[n].address} for n in ("d", "e", "b")]
                    }
                },
                "unused": {"loadBalancer": {"servers": [{"address": backends["b"].address}]}},
            },
        }
    }
    static = {
        "entryPoints": {name: {"address": "127.0.0.1:0"} for name in ("flat", "nested")},
        "log": {"level": "ERROR"},
    }
    directory: Path = tmp_path_factory.mktemp("tcp-weighted")
    proxy = start_proxynow(directory, static, dynamic, workers=1)
    yield proxy
    assert proxy.stop() == 0


def names(proxy: ProxynowProcess, entrypoint: str, count: int) -> str:
    """The backend that answered each of `count` connections made one after the other."""
    answered = []
    for _ in range(count):
        with socket.create_connection(("127.0.0.1", proxy.ports[entrypoint]), timeout=20) as s:
            chunks = []
            while chunk := s.recv(16):
                chunks.append(chunk)
            answered.append(b"".join(chunks).decode())
    return "".join(answered)


def test_weighted_service_follows_the_weights(proxy: ProxynowProcess) -> None:
    order = names(proxy, "flat", 20)
    # 3:1 in every run of four connections, `b` spread out (not after six `a`).
    assert all(Counter(order[i : i + 4]) == {"a": 3, "b": 1} for i in range(0, 20, 4)), order


def test_nested_weighted_services_and_server_order(proxy: ProxynowProcess) -> None:
    order = names(proxy, "nested", 24)
    # `outer` gives `a` two connections in three and `inner` one; `inner` alternates
    # between `c` and `trio`, whose servers take turns as listed (d, e, b); weight 0 never.
    assert all(Counter(order[i : i + 3])["a"] == 2 for i in range(0, 24, 3)), order
    assert order.replace("a", "") == "cdcecbcd", order
