"""Instructions per keep-alive request through the HTTP/1.1 data plane, without sockets.

On machines where `perf` cannot count instructions and wall-clock figures swing with the
host, `valgrind --tool=callgrind` can: it counts what the interpreter executes, the same
for the same code and input whatever else the machine does. This drives one client
connection (`HttpProxy`) and one pooled upstream connection through in-memory transports:
N requests of the keepalive benchmark's shape (a GET with curl's few headers, a 13-byte
answer), each parsed, routed, forwarded, answered and accounted as on the wire.

    PYTHONHASHSEED=0 PYTHONPATH=. valgrind --tool=callgrind --collect-atstart=no \\
        --toggle-collect=functools_reduce --callgrind-out-file=/tmp/cg.out \\
        python bench/hotpath_count.py 5000
    callgrind_annotate /tmp/cg.out | head   # the measured loop's instructions; / 5000

The measured requests run inside one `functools.reduce` call, so that callgrind counts
them alone (start-up and warm-up left out). Run it from two trees (PYTHONPATH=<tree>)
and compare the instructions per request.

`--middlewares chain5` puts the chain-of-five benchmark's middlewares (bench/configs.py) on
the router and sends its request (`/p/`, `Accept-Encoding: gzip`); `--middlewares compress`
answers bench/configs.py's 16 KiB text body through compress. `--access-log=FORMAT`
(common, genericCLF or json) turns the access log on, to a file in a temporary directory
through the real `LineBuffer` and `LineWriter` (the thread writes outside the measured
call, as outside the event loop: count it with `--toggle-collect=thread_run` instead,
its whole life, for the 7,200 lines of `bench/hotpath_count.py 5000`).
`--metrics` adds the metrics-c50 scenario's static options (Prometheus with every label
set: the workers count the same, with or without it); `--header-labels` adds
`headerLabels: {agent: User-Agent}` to them.

`--routers N` serves N host-keyed routers (`Host(\\`h0000.bench\\`)`, ... as bench/configs.py
writes them for routers-1000) and rotates the request's Host over all of them, as the
routers-1000 scenario's load does; `--routers 1` is its baseline (one Host router, the same
Host on every request). `--routers N --mixed` writes them as Traefik users do, several
routers per host: per host a bare `Host(...)`, `Host(...) && PathPrefix(\\`/api\\`)`,
`Host(...) && PathPrefix(\\`/static\\`)` and `Host(...) && Path(\\`/health\\`)`, the requests
rotating over every router (hosts and paths).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import os
import shutil
import sys
import tempfile
from typing import Any

from bench.configs import BODIES, CHAIN_PREFIX, MIDDLEWARE_SETS
from proxynow.config.dynamic import DynamicConfig
from proxynow.config.static import StaticConfig
from proxynow.edge.graph.resources import GraphResources
from proxynow.edge.graph.state import WorkerState
from proxynow.edge.http1.factory import http_protocol_factory
from proxynow.edge.http1.protocol import EntryPointRuntime
from proxynow.edge.runtime.access import open_access_log
from proxynow.edge.runtime.worker import worker_metrics
from proxynow.edge.upstream.connection import UpstreamConnection
from proxynow.snapshot import Snapshot

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nhello, world\n"
)


class MemoryTransport:
    """Just enough of an asyncio transport: writes are kept (and dropped) in memory."""

    def __init__(self, peer: tuple[str, int]) -> None:
        self.peer = peer
        self.written = 0
        self.closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.peer if name == "peername" else default

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def writelines(self, pieces: Any) -> None:
        for data in pieces:
            self.written += len(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    abort = close

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def get_write_buffer_size(self) -> int:
        return 0

    def can_write_eof(self) -> bool:
        return False


# Per host of --mixed: the rule's tail and a request path only that router answers.
_MIXED = (
    ("", "/index.html"),
    (" && PathPrefix(`/api`)", "/api/users"),
    (" && PathPrefix(`/static`)", "/static/app.js"),
    (" && Path(`/health`)", "/health"),
)


def _host(i: int) -> str:
    return f"h{i:04d}.bench"


def router_rules(routers: int, mixed: bool) -> list[str]:
    """The rules of --routers N (--mixed): router i's rule is the i-th."""
    if not mixed:
        return [f"Host(`{_host(i)}`)" for i in range(routers)]
    return [f"Host(`{_host(i // 4)}`){_MIXED[i % 4][0]}" for i in range(routers)]


def router_requests(routers: int, mixed: bool) -> list[bytes]:
    """One request per router of --routers N (--mixed), each answered by that router."""
    requests = []
    for i in range(routers):
        host, path = (_host(i // 4), _MIXED[i % 4][1]) if mixed else (_host(i), "/")
        head = REQUEST.replace(b"Host: 127.0.0.1:8000", b"Host: " + host.encode())
        requests.append(head.replace(b"GET / ", b"GET " + path.encode() + b" "))
    return requests


def config(middlewares: str, routers: int = 0, mixed: bool = False) -> DynamicConfig:
    service = {"loadBalancer": {"servers": [{"url": "http://127.0.0.1:9"}]}}
    router: dict[str, Any] = {"rule": "PathPrefix(`/`)", "service": "s@bench"}
    http: dict[str, Any] = {"routers": {"r@bench": router}, "services": {"s@bench": service}}
    if routers:
        rules = router_rules(routers, mixed)
        http["routers"] = {
            f"r{i:04d}@bench": {"rule": r, "service": "s@bench"} for i, r in enumerate(rules)
        }
    if middlewares:
        chain = MIDDLEWARE_SETS[middlewares]
        http["middlewares"] = {f"{name}@bench": spec for name, spec in chain.items()}
        router["middlewares"] = [f"{name}@bench" for name in chain]
    return DynamicConfig.model_validate({"http": http})


def exchange(middlewares: str) -> tuple[bytes, bytes]:
    """The request and the backend's response of the mode."""
    if middlewares == "chain5":
        request = REQUEST.replace(b"GET / ", b"GET " + CHAIN_PREFIX.encode() + b"/ ")
        return request.replace(b"\r\n\r\n", b"\r\nAccept-Encoding: gzip\r\n\r\n"), RESPONSE
    if middlewares == "compress":
        body = BODIES["/text16k"]
        head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: text/plain\r\n\r\n"
        request = REQUEST.replace(b"\r\n\r\n", b"\r\nAccept-Encoding: gzip\r\n\r\n")
        return request, head % len(body) + body
    return REQUEST, RESPONSE


# --body-1m: the body-1m scenario's 1 MiB answer, read from the backend in uvloop's reads
# (256,000 bytes as strace shows them), the head with the first.
BODY_READ = 256_000
LONG = [False]


def long_reads() -> list[bytes]:
    body = BODIES["/1m"]
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    whole = head % len(body) + body
    return [whole[at : at + BODY_READ] for at in range(0, len(whole), BODY_READ)]


def static_config(access_log: str, metrics: str = "") -> StaticConfig:
    options: dict[str, Any] = {"entryPoints": {"web": {"address": ":80"}}}
    if metrics:
        labels = {"addEntryPointsLabels": True, "addRoutersLabels": True}
        prometheus: dict[str, Any] = {**labels, "addServicesLabels": True}
        if metrics == "headers":
            prometheus["headerLabels"] = {"agent": "User-Agent"}
        options["metrics"] = {"prometheus": prometheus}
    if access_log:
        path = os.path.join(tempfile.mkdtemp(prefix="hotpath-"), "access.log")
        options["accessLog"] = {"filePath": path, "format": access_log}
    return StaticConfig.model_validate(options)


async def run(
    count: int,
    middlewares: str = "",
    access_log: str = "",
    metrics: str = "",
    routers: int = 0,
    mixed: bool = False,
) -> int:
    static = static_config(access_log, metrics)
    resources = GraphResources(metrics=worker_metrics(static))
    state = WorkerState(tick_interval=1.0, resources=resources)
    state.load(Snapshot(version=1, config=config(middlewares, routers, mixed)), static)
    if static.access_log is not None:
        state.access_log = open_access_log(static.access_log, state, asyncio.get_running_loop())
    request, response = exchange(middlewares)
    reads = long_reads() if LONG[0] else [response]
    response = b"".join(reads)
    rotation = itertools.cycle(router_requests(routers, mixed) if routers else [request])
    client = http_protocol_factory(state, EntryPointRuntime("web"))()
    client_transport = MemoryTransport(("127.0.0.1", 40000))
    client.connection_made(client_transport)  # type: ignore[arg-type]
    pools = state.resources.pools.pools
    # The one pool exists once the graph is built; give it one live connection.
    (pool,) = pools.values()
    upstream = UpstreamConnection(pool)
    upstream.connection_made(MemoryTransport(("127.0.0.1", 9)))  # type: ignore[arg-type]
    pool.release(upstream, 0.0)

    def one(_: object, __: object) -> None:
        client.data_received(next(rotation))
        for data in reads:
            upstream.data_received(data)

    for _ in range(max(200, 2 * routers)):  # warm: memos filled, the graph's first lookups done
        one(None, None)
    # Measured inside one C call, so that callgrind can count it alone:
    # --collect-atstart=no --toggle-collect=functools_reduce
    functools.reduce(one, range(count), None)
    assert not client_transport.closing
    if state.access_log is not None:
        await _batches(state.access_log, one)
        state.access_log.close()
        shutil.rmtree(os.path.dirname(static.access_log.file_path))
        return client_transport.written - LOOP_REQUESTS * len(response)
    return client_transport.written


# After the measured call: requests in groups of GROUP per event-loop iteration, to count
# how often the access log hands lines to its writer thread (each time a wake-up of it).
LOOP_REQUESTS = 2000
GROUP = 10


async def _batches(log: Any, one: Any) -> None:
    writer = log.writer
    before = getattr(writer, "batches", None)
    for _ in range(LOOP_REQUESTS // GROUP):
        for _ in range(GROUP):
            one(None, None)
        await asyncio.sleep(0)
    await asyncio.sleep(0.2)  # the last batch's delay
    log.buffer.flush()
    if before is not None:
        handed = writer.batches - before
        print(f"access log: {handed} batches for {LOOP_REQUESTS} requests in groups of {GROUP}")


def main() -> None:
    if "--no-gc" in sys.argv:
        import gc

        gc.disable()
        sys.argv.remove("--no-gc")
    middlewares = ""
    if "--middlewares" in sys.argv:
        at = sys.argv.index("--middlewares")
        middlewares = sys.argv[at + 1]
        del sys.argv[at : at + 2]
    access_log = ""
    for arg in list(sys.argv):
        if arg.startswith("--access-log="):
            access_log = arg.partition("=")[2]
            sys.argv.remove(arg)
    metrics = ""
    for flag, mode in (("--metrics", "on"), ("--header-labels", "headers")):
        if flag in sys.argv:
            metrics = mode
            sys.argv.remove(flag)
    routers = 0
    if "--routers" in sys.argv:
        at = sys.argv.index("--routers")
        routers = int(sys.argv[at + 1])
        del sys.argv[at : at + 2]
    mixed = "--mixed" in sys.argv
    if "--body-1m" in sys.argv:
        LONG[0] = True
        sys.argv.remove("--body-1m")
    if mixed:
        sys.argv.remove("--mixed")
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    written = asyncio.run(run(count, middlewares, access_log, metrics, routers, mixed))
    warm = max(200, 2 * routers)
    if not middlewares and not LONG[0]:
        assert written == (count + warm) * len(RESPONSE), (written, count)
    print(f"{count} measured requests (and {warm} before them), {written} bytes answered")


if __name__ == "__main__":
    main()
