"""Smoke benchmark of the HTTP data plane: one proxy process in front of nginx.

    .venv/bin/python bench/edge_smoke.py [--seconds 5] [--connections 50] [--path /1m]
        [--close] [--profile out.txt [--native]]

Starts nginx (13 bytes at /, 16 KiB at /16k, 1 MiB at /1m, keep-alive) pinned to CPU 0,
the proxy (http_protocol_factory on uvloop, metrics on as always) pinned to CPU 1, then
wrk -t1 on CPU 0, and prints wrk's report. Everything binds 127.0.0.1 on free ports and
is stopped by PID at the end.
A smoke check, not the benchmark of record: keep runs short on shared machines.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log crit;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir};
    proxy_temp_path {dir};
    fastcgi_temp_path {dir};
    uwsgi_temp_path {dir};
    scgi_temp_path {dir};
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        location = / {{ return 200 "Hello, World!"; }}
        location / {{ root {dir}; }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_port(port: int, deadline: float = 10.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def requests_done(report: str) -> int:
    for line in report.splitlines():
        if " requests in " in line:
            return int(line.split()[0])
    return 0


def serve_proxy(backend_port: int, port: int) -> None:
    """The proxy process: one HTTP entrypoint, one router, one server."""
    import uvloop

    from proxynow.config.dynamic import DynamicConfig
    from proxynow.config.static import StaticConfig
    from proxynow.edge.graph.state import WorkerState
    from proxynow.edge.http1.factory import http_protocol_factory
    from proxynow.edge.http1.protocol import EntryPointRuntime
    from proxynow.edge.runtime.worker import tune_allocator
    from proxynow.snapshot import Snapshot

    tune_allocator()

    config = DynamicConfig.model_validate(
        {
            "http": {
                "routers": {"r@bench": {"rule": "PathPrefix(`/`)", "service": "s@bench"}},
                "services": {
                    "s@bench": {
                        "loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{backend_port}"}]}
                    }
                },
            }
        }
    )
    static = StaticConfig.model_validate({"entryPoints": {"web": {"address": f":{port}"}}})

    async def main() -> None:
        state = WorkerState()
        state.load(Snapshot(version=1, config=config), static)
        factory = http_protocol_factory(state, EntryPointRuntime("web"))
        server = await asyncio.get_running_loop().create_server(
            factory, "127.0.0.1", port, backlog=4096
        )
        async with server:
            await server.serve_forever()

    uvloop.run(main())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--path", default="/", help="request path: /, /16k or /1m")
    parser.add_argument("--close", action="store_true", help="Connection: close per request")
    parser.add_argument("--profile", help="py-spy the proxy, writing this (raw folded stacks)")
    parser.add_argument("--native", action="store_true", help="py-spy --native")
    parser.add_argument("--proxy", help="run this script (backend port, port) instead")
    parser.add_argument("--serve", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_proxy(*args.serve)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        backend_port, proxy_port = free_port(), free_port()
        conf = Path(tmp, "nginx.conf")
        conf.write_text(NGINX_CONF.format(dir=tmp, port=backend_port))
        Path(tmp, "16k").write_bytes(b"a" * 16 * 1024)
        Path(tmp, "1m").write_bytes(b"b" * 1024 * 1024)
        nginx = subprocess.Popen(["taskset", "-c", "0", "nginx", "-c", str(conf)])
        proxy = subprocess.Popen(
            [
                "taskset",
                "-c",
                "1",
                sys.executable,
                __file__,
                "--serve",
                str(backend_port),
                str(proxy_port),
            ],
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        )
        try:
            wait_port(backend_port)
            wait_port(proxy_port)
            spy = None
            if args.profile:
                spy = subprocess.Popen(
                    [
                        str(Path(sys.executable).with_name("py-spy")),
                        "record",
                        "--pid",
                        str(proxy.pid),
                        "-d",
                        str(args.seconds),
                        "-r",
                        "250",
                        "-f",
                        "raw",
                        "-o",
                        args.profile,
                        "--nonblocking",
                        *(["--native"] if args.native else []),
                    ],
                    stdout=subprocess.DEVNULL,
                )
            wrk = [
                "taskset",
                "-c",
                "0",
                "wrk",
                "-t1",
                f"-c{args.connections}",
                f"-d{args.seconds}s",
                *(["-H", "Connection: close"] if args.close else []),
                f"http://127.0.0.1:{proxy_port}{args.path}",
            ]
            before = cpu_seconds(proxy.pid)
            run = subprocess.run(wrk, check=False, capture_output=True, text=True)
            used = cpu_seconds(proxy.pid) - before
            print(run.stdout, end="")
            requests = requests_done(run.stdout)
            if requests:
                # Robust against a noisy shared machine: the proxy's own CPU per request.
                print(
                    f"proxy CPU per request: {used / requests * 1e6:.1f} us "
                    f"(=> {requests / used:,.0f} req/s per fully used core)"
                )
            code = run.returncode
            if spy is not None:
                spy.wait(30)
            return code
        finally:
            for process in (proxy, nginx):
                process.send_signal(signal.SIGTERM if process is proxy else signal.SIGQUIT)
                process.wait(10)


if __name__ == "__main__":
    sys.exit(main())
