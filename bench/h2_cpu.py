"""CPU time per HTTP/2 request under a light, fixed-count h2load load (not a throughput run).

Req/s figures need an idle host (bench/run.py); CPU per request does not, or far less: this
starts the scenario's backend and one proxy (proxynow by default, or Traefik) pinned to one
core, sends a fixed number of requests with h2load from another, and reads the CPU time the
proxy's process tree spent from /proc before and after (clock ticks, 10 ms: the count should
keep the run above a second of CPU).

    PYTHONPATH=$PWD .venv/bin/python bench/h2_cpu.py tls       # h2 over TLS (ALPN h2)
    PYTHONPATH=$PWD .venv/bin/python bench/h2_cpu.py h2c       # prior-knowledge h2c
    ... --proxy traefik --requests 20000 --streams 10 --connections 10

`--python` runs proxynow with another interpreter (a private compiled venv).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import procs
from bench.configs import SMALL_BODY, Setup, write_backend, write_traefik_files
from bench.h2load import h2_answers
from bench.loadgen import Load
from bench.proxies import executable

WARM = 2000


def h2load(
    port: int, tls: bool, count: int, connections: int, streams: int, cpus: str, path: str = "/"
) -> str:
    scheme = "https" if tls else "http"
    argv = ["taskset", "-c", cpus, "h2load", f"-n{count}", f"-c{connections}", f"-m{streams}"]
    done = subprocess.run(
        [*argv, f"{scheme}://127.0.0.1:{port}{path}"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0 or f"{count} succeeded" not in done.stdout:
        raise RuntimeError(f"h2load failed: {done.stdout[-800:]} {done.stderr[-400:]}")
    return done.stdout


def proxy_argv(proxy: str, static: Path, python: str | None) -> tuple[list[str], dict[str, str]]:
    if proxy == "traefik":
        binary = executable("traefik") or "traefik"
        return [binary, f"--configFile={static}"], {"GOMAXPROCS": "1"}
    if python:
        return [python, "-m", "proxynow", "run", "--config", str(static)], {}
    binary = executable("proxynow") or "proxynow"
    return [binary, "run", "--config", str(static)], {}


def _syscalls(root: int) -> tuple[int, int]:
    """Read and write system calls of the tree so far (/proc/<pid>/io: syscr, syscw)."""
    reads = writes = 0
    for pid in procs.tree_pids(root):
        try:
            text = Path(f"/proc/{pid}/io").read_text()
        except OSError:
            continue
        fields = dict(line.split(": ") for line in text.splitlines())
        reads += int(fields["syscr"])
        writes += int(fields["syscw"])
    return reads, writes


def _profile(root: int, out: str) -> subprocess.Popen[bytes]:
    """py-spy on the busiest process of the tree (the worker) while the load runs."""
    pids = [pid for pid in procs.tree_pids(root) if pid != root] or [root]
    worker = max(pids, key=lambda pid: getattr(procs.read_stat(pid), "cpu_ticks", 0))
    spy = executable("py-spy") or "py-spy"
    argv = [spy, "record", "--pid", str(worker), "--duration", "4", "--rate", "500"]
    return subprocess.Popen([*argv, "--native", "--format", "raw", "--output", out])


def measure(args: argparse.Namespace) -> float:
    tls = args.mode == "tls"
    warm = min(WARM, max(args.requests // 5, 10))
    with tempfile.TemporaryDirectory(prefix="h2cpu-") as raw:
        workdir = Path(raw)
        workdir.chmod(0o755)  # nginx's workers read the bodies' files as another user
        proxy_port, backend_port = procs.free_ports(2)
        conf = write_backend(workdir, backend_port, workers=1)
        backend = procs.start(
            "backend",
            ["nginx", "-c", str(conf), "-e", str(conf.parent / "error.log")],
            args.load_cpus,
            workdir / "backend.log",
        )
        try:
            files = write_traefik_files(workdir, proxy_port, backend_port, Setup(tls=tls, h2=True))
            argv, env = proxy_argv(args.proxy, files.static, args.python)
            server = procs.start(args.proxy, argv, args.proxy_cpus, workdir / "proxy.log", env)
            try:
                load = Load(1, tls=tls, h2=True, streams=1)
                procs.wait_until(
                    lambda: h2_answers(proxy_port, load, SMALL_BODY)[0], 30.0, "proxying", server
                )
                h2load(
                    proxy_port, tls, warm, args.connections, args.streams, args.load_cpus, args.path
                )
                spy = _profile(server.pid, args.profile) if args.profile else None
                before = procs.tree_cpu_seconds(server.pid)
                calls = _syscalls(server.pid)
                h2load(
                    proxy_port,
                    tls,
                    args.requests,
                    args.connections,
                    args.streams,
                    args.load_cpus,
                    args.path,
                )
                spent = procs.tree_cpu_seconds(server.pid) - before
                reads, writes = (b - a for a, b in zip(calls, _syscalls(server.pid), strict=True))
                print(
                    f"per request: {reads / args.requests:.2f} reads, "
                    f"{writes / args.requests:.2f} writes (syscalls, whole tree)"
                )
                if spy is not None:
                    spy.wait(timeout=120)
            finally:
                procs.stop(server)
        finally:
            procs.stop(backend)
    return spent / args.requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("tls", "h2c"))
    parser.add_argument("--proxy", default="proxynow", choices=("proxynow", "traefik"))
    parser.add_argument("--python", help="the interpreter that runs proxynow")
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--path", default="/", help="/1m: the 1 MiB body (bench/configs.py)")
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--streams", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--profile", help="py-spy's folded stacks of the worker, to this file")
    parser.add_argument("--proxy-cpus", default="0")
    parser.add_argument("--load-cpus", default="1")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONHASHSEED", "0")
    figures = [measure(args) for _ in range(args.rounds)]
    shown = " ".join(f"{f:.1f}" for f in figures)
    print(f"{args.proxy} {args.mode}: CPU µs per request {shown}")


if __name__ == "__main__":
    main()
