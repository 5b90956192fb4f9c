"""CPU per keep-alive request of one proxynow worker, with the access log off and on.

Not a throughput benchmark: a light, fixed-count load (h2load, HTTP/1.1, `--requests`
requests over `--connections`) against one worker pinned to a core, the backend nginx on
the other; the figure is the worker's CPU time (every thread of it, from
/proc/<pid>/task/*/schedstat, in ns) divided by the requests. Each mode runs `--rounds`
times, alternating, and the median is printed. CPU per request is far less sensitive
to what else the host runs than requests per second, but it is a figure of a shared host.

    PYTHONPATH=<tree> python bench/access_cpu.py --requests 30000 --rounds 3

The modes: `off` (no access log), `json` and `common` (the access log to a file in a
temporary directory), each with the metrics-c50 scenario's Prometheus labels.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from tests.support.proc import ProxynowProcess, poll, start_proxynow

NGINX_CONF = """daemon off; worker_processes 1; pid {dir}/nginx.pid; error_log {dir}/error.log;
events {{}}
http {{ access_log off; server {{ listen 127.0.0.1:{port};
  location / {{ return 200 "hello, world\\n"; }} }} }}
"""


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _cpu_ns(pid: int) -> tuple[int, int]:
    """CPU ns of the worker's main thread (its event loop) and of its other threads."""
    main = others = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        used = int((task / "schedstat").read_text().split()[0])
        if task.name == str(pid):
            main += used
        else:
            others += used
    return main, others


def _config(mode: str, backend: int, directory: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    labels = {"addEntryPointsLabels": True, "addRoutersLabels": True, "addServicesLabels": True}
    static: dict[str, Any] = {
        "entryPoints": {"web": {"address": "127.0.0.1:0"}},
        "metrics": {"prometheus": labels},
    }
    if mode != "off":
        static["accessLog"] = {"filePath": str(directory / "access.log"), "format": mode}
    service = {"loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{backend}"}]}}
    router = {"rule": "PathPrefix(`/`)", "service": "app"}
    dynamic = {"http": {"routers": {"app": router}, "services": {"app": service}}}
    return static, dynamic


def _round(
    mode: str, backend: int, requests: int, connections: int, directory: Path
) -> tuple[float, float]:
    static, dynamic = _config(mode, backend, directory / mode)
    proxy: ProxynowProcess = start_proxynow(directory / mode, static, dynamic, workers=1)
    try:
        (worker,) = proxy.worker_pids()
        subprocess.run(
            ["taskset", "-a", "-p", "-c", "1", str(worker)], check=True, capture_output=True
        )
        url = f"http://127.0.0.1:{proxy.ports['web']}/"
        load = ["taskset", "-c", "0", "h2load", "--h1", "-c", str(connections), "-t", "1"]
        subprocess.run([*load, "-n", "2000", url], check=True, capture_output=True)  # warm
        before = _cpu_ns(worker)
        done = subprocess.run([*load, "-n", str(requests), url], capture_output=True, text=True)
        after = _cpu_ns(worker)
        assert f"{requests} succeeded" in done.stdout, done.stdout
        if mode != "off":
            log = directory / mode / "access.log"
            poll(lambda: log.read_bytes().count(b"\n") >= requests + 2000, 10, "the lines")
        loop = (after[0] - before[0]) / requests / 1000
        return loop, (after[1] - before[1]) / requests / 1000
    finally:
        proxy.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=30000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--modes", default="off,json")
    args = parser.parse_args()
    modes = args.modes.split(",")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    with tempfile.TemporaryDirectory() as temporary:
        directory = Path(temporary)
        port = _free_port()
        (directory / "nginx.conf").write_text(NGINX_CONF.format(dir=directory, port=port))
        backend = subprocess.Popen(
            ["taskset", "-c", "0", nginx, "-c", str(directory / "nginx.conf")],
            stderr=subprocess.DEVNULL,
        )
        try:
            poll(lambda: (directory / "nginx.pid").exists(), 10, "nginx")
            figures: dict[str, list[float]] = {mode: [] for mode in modes}
            threads: dict[str, list[float]] = {mode: [] for mode in modes}
            for _ in range(args.rounds):
                for mode in modes:
                    shutil.rmtree(directory / mode, ignore_errors=True)
                    loop, other = _round(mode, port, args.requests, args.connections, directory)
                    figures[mode].append(loop + other)
                    threads[mode].append(other)
            for mode in modes:
                runs = " ".join(f"{f:.1f}" for f in figures[mode])
                other = statistics.median(threads[mode])
                print(
                    f"{mode}: {statistics.median(figures[mode]):.1f} us CPU per request ({runs}),"
                    f" {other:.2f} of it in threads besides the event loop's"
                )
        finally:
            backend.terminate()
            backend.wait(10)
    print(f"pid {os.getpid()} done")


if __name__ == "__main__":
    main()
