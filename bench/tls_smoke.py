"""Smoke benchmark of TLS termination: proxynow, Traefik and nginx side by side.

    .venv/bin/python bench/tls_smoke.py [--seconds 3] [--connections 50]
        [--proxies proxynow,traefik,nginx] [--profile out.txt]

The harness makes an ECDSA P-256 certificate (the default certificate of every proxy),
starts nginx as the backend (13 bytes at /) on CPU 0, each proxy in turn on CPU 1 (one
core: one proxynow worker, GOMAXPROCS=1, one nginx worker) and wrk -t1 on CPU 0 over
HTTPS twice: keep-alive (req/s) and `Connection: close` (a new TLS connection, i.e. a
full handshake, per request). It prints req/s, the proxy's CPU per request and the
ratios to Traefik. A smoke check, not the benchmark of record: keep runs short.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.configs import write_certificate  # noqa: E402
from bench.edge_smoke import NGINX_CONF, cpu_seconds, free_port, requests_done, wait_port  # noqa: E402

NGINX_TLS = """
worker_processes 1;
daemon off;
pid {dir}/nginx-tls.pid;
error_log {dir}/nginx-tls.log crit;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir};
    proxy_temp_path {dir};
    fastcgi_temp_path {dir};
    uwsgi_temp_path {dir};
    scgi_temp_path {dir};
    keepalive_requests 1000000;
    upstream backend {{ server 127.0.0.1:{backend}; keepalive 256; }}
    server {{
        listen 127.0.0.1:{port} ssl backlog=4096;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """The harness's ECDSA P-256 certificate (bench/configs.py), as bench.crt / bench.key."""
    cert, key = write_certificate(directory)
    return cert.rename(directory / "bench.crt"), key.rename(directory / "bench.key")


def dynamic_config(backend: int, cert: Path, key: Path) -> dict[str, object]:
    """The dynamic configuration Traefik and proxynow share: one TLS router."""
    return {
        "http": {
            "routers": {
                "bench": {"rule": "PathPrefix(`/`)", "service": "backend", "tls": {}},
            },
            "services": {
                "backend": {"loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{backend}"}]}}
            },
        },
        "tls": {
            "stores": {
                "default": {"defaultCertificate": {"certFile": str(cert), "keyFile": str(key)}}
            }
        },
    }


def serve_proxynow(directory: Path, port: int) -> None:
    """The proxynow process: one worker's data plane (no control plane) on `port`."""
    import uvloop

    from proxynow.config.dynamic import DynamicConfig
    from proxynow.config.static import StaticConfig
    from proxynow.edge.graph.state import WorkerState
    from proxynow.edge.runtime.accept import connection_factory
    from proxynow.edge.runtime.worker import tune_allocator
    from proxynow.snapshot import Snapshot

    tune_allocator()
    config = DynamicConfig.model_validate(yaml.safe_load((directory / "dynamic.yml").read_text()))
    static = StaticConfig.model_validate({"entryPoints": {"web": {"address": f":{port}"}}})

    async def main() -> None:
        state = WorkerState()
        state.load(Snapshot(version=1, config=config), static)
        factory = connection_factory(state, "web", static.entry_points["web"])
        server = await asyncio.get_running_loop().create_server(
            factory, "127.0.0.1", port, backlog=4096
        )
        async with server:
            await server.serve_forever()

    uvloop.run(main())


def start_proxy(name: str, directory: Path, port: int, backend: int) -> subprocess.Popen[bytes]:
    cert, key = directory / "bench.crt", directory / "bench.key"
    pin = ["taskset", "-c", "1"]
    if name == "proxynow":
        argv = [sys.executable, __file__, "--serve", str(directory), str(port)]
        return subprocess.Popen(pin + argv, env={**os.environ, "PYTHONPATH": str(REPO)})
    if name == "traefik":
        static = {
            "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
            "entryPoints": {"web": {"address": f"127.0.0.1:{port}"}},
            "providers": {"file": {"filename": str(directory / "dynamic.yml")}},
            "log": {"level": "ERROR"},
        }
        (directory / "traefik.yml").write_text(yaml.safe_dump(static))
        binary = str(REPO / ".venv" / "bin" / "traefik")
        argv = [binary, f"--configFile={directory / 'traefik.yml'}"]
        return subprocess.Popen(pin + argv, env={**os.environ, "GOMAXPROCS": "1"})
    conf = directory / "nginx-tls.conf"
    conf.write_text(NGINX_TLS.format(dir=directory, port=port, backend=backend, cert=cert, key=key))
    return subprocess.Popen([*pin, "nginx", "-c", str(conf), "-e", str(directory / "e.log")])


def wait_https(port: int, deadline: float = 15.0) -> None:
    """Until the proxy answers 200 over TLS (it is configured and proxying)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        done = subprocess.run(
            ["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", f"https://127.0.0.1:{port}/"],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.stdout == "200":
            return
        time.sleep(0.1)
    raise RuntimeError(f"no HTTPS answer on {port}")


def measure(
    pid: int, port: int, seconds: int, connections: int, close: bool
) -> tuple[float, float]:
    """(req/s, proxy CPU µs per request) of one wrk run."""
    wrk = ["taskset", "-c", "0", "wrk", "-t1", f"-c{connections}", f"-d{seconds}s"]
    if close:
        wrk += ["-H", "Connection: close"]
    before = cpu_seconds(pid)
    run = subprocess.run([*wrk, f"https://127.0.0.1:{port}/"], capture_output=True, text=True)
    used = cpu_seconds(pid) - before
    requests = requests_done(run.stdout)
    seconds_run = seconds or 1
    return requests / seconds_run, (used / requests * 1e6 if requests else 0.0)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--proxies", default="proxynow,traefik,nginx")
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_proxynow(Path(args.serve[0]), int(args.serve[1]))
        return 0
    results: dict[str, dict[str, tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        cert, key = make_certificate(directory)
        backend = free_port()
        (directory / "nginx.conf").write_text(NGINX_CONF.format(dir=tmp, port=backend))
        config = dynamic_config(backend, cert, key)
        (directory / "dynamic.yml").write_text(yaml.safe_dump(config))
        nginx = subprocess.Popen(
            ["taskset", "-c", "0", "nginx", "-c", str(directory / "nginx.conf")]
        )
        try:
            wait_port(backend)
            for name in args.proxies.split(","):
                port = free_port()
                proxy = start_proxy(name, directory, port, backend)
                try:
                    wait_https(port)
                    results[name] = {
                        kind: measure(proxy.pid, port, args.seconds, args.connections, close)
                        for kind, close in (("keep-alive", False), ("handshake", True))
                    }
                finally:
                    proxy.send_signal(signal.SIGQUIT if name == "nginx" else signal.SIGTERM)
                    proxy.wait(15)
        finally:
            nginx.send_signal(signal.SIGQUIT)
            nginx.wait(15)
    report(results)
    return 0


def report(results: dict[str, dict[str, tuple[float, float]]]) -> None:
    reference = results.get("traefik")
    for kind in ("keep-alive", "handshake"):
        print(f"HTTPS {kind} (one core):")
        for name, figures in results.items():
            rps, cpu = figures[kind]
            ratio = f"  {rps / reference[kind][0]:.2f}x Traefik" if reference else ""
            print(f"  {name:9s} {rps:10,.0f} req/s  {cpu:7.1f} us CPU/req{ratio}")


if __name__ == "__main__":
    raise SystemExit(main())
