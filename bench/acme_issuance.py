"""Time from process start to the first HTTPS response with a Pebble-trusted certificate.

For each run: a fresh Pebble (tests/support/pebble.py: throwaway CA, challtestsrv DNS,
PEBBLE_VA_NOSLEEP), an empty ACME storage, then the proxy is started and a client that
trusts only Pebble's root polls `https://app.example.com/` (SNI, connected to
127.0.0.1) every 10 ms until it gets a response. The HTTP-01 challenge is answered on
the `web` entrypoint. Prints one line per run and the median per proxy.

    .venv/bin/python -m bench.acme_issuance [--runs 3] [--traefik]

Traefik is given Pebble's HTTPS CA with LEGO_CA_CERTIFICATES (its `caCertificates`).
"""

from __future__ import annotations

import argparse
import http.server
import os
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from tests.support.pebble import Pebble, PebbleFactory, free_port

REPO = Path(__file__).resolve().parents[1]
HOST = "app.example.com"
DEADLINE = 60.0
REQUEST = f"GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode()


class _Backend:
    def __init__(self) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _configs(
    pebble: Pebble, directory: Path, web: int, websecure: int, backend: str, traefik: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    acme: dict[str, Any] = {
        "email": "admin@example.com",
        "storage": str(directory / "acme.json"),
        "caServer": pebble.directory_url,
        "keyType": "EC256",
        "httpChallenge": {"entryPoint": "web"},
    }
    if not traefik:
        acme["caCertificates"] = [str(pebble.ca_file)]
    static = {
        "entryPoints": {
            "web": {"address": f"127.0.0.1:{web}"},
            "websecure": {"address": f"127.0.0.1:{websecure}", "http": {"tls": {}}},
        },
        "certificatesResolvers": {"le": {"acme": acme}},
        "providers": {"file": {"filename": str(directory / "dynamic.yml")}},
    }
    dynamic = {
        "http": {
            "routers": {
                "app": {
                    "rule": f"Host(`{HOST}`)",
                    "entryPoints": ["websecure"],
                    "service": "app",
                    "tls": {"certResolver": "le"},
                }
            },
            "services": {"app": {"loadBalancer": {"servers": [{"url": backend}]}}},
        }
    }
    return static, dynamic


def _trusted_response(port: int, context: ssl.SSLContext) -> bool:
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=2) as raw,
            context.wrap_socket(raw, server_hostname=HOST) as tls,
        ):
            tls.sendall(REQUEST)
            return tls.recv(12).startswith(b"HTTP/1.1 200")
    except (OSError, ssl.SSLError):
        return False


def one_run(proxy: str, base: Path, factory: PebbleFactory, backend: str) -> float:
    web, websecure = free_port(), free_port()
    pebble = factory.start(http_port=web, tls_port=websecure)
    directory = Path(tempfile.mkdtemp(dir=base, prefix=f"{proxy}-"))
    static, dynamic = _configs(pebble, directory, web, websecure, backend, proxy == "traefik")
    (directory / "static.yml").write_text(yaml.safe_dump(static))
    (directory / "dynamic.yml").write_text(yaml.safe_dump(dynamic))
    context = ssl.create_default_context(cadata=pebble.root_pem().decode())
    env = dict(os.environ)
    if proxy == "traefik":
        argv = [str(REPO / ".venv/bin/traefik"), f"--configFile={directory / 'static.yml'}"]
        env["LEGO_CA_CERTIFICATES"] = str(pebble.ca_file)
    else:
        argv = [sys.executable, "-m", "proxynow", "run", "--config", str(directory / "static.yml")]
    with (directory / "proxy.log").open("wb") as log:
        start = time.monotonic()
        process = subprocess.Popen(argv, cwd=directory, env=env, stdout=log, stderr=log)
    try:
        while time.monotonic() - start < DEADLINE:
            if _trusted_response(websecure, context):
                return time.monotonic() - start
            if process.poll() is not None:
                break
            time.sleep(0.01)
        raise RuntimeError(f"{proxy}: no trusted response; see {directory / 'proxy.log'}")
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        pebble.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--traefik", action="store_true", help="also measure Traefik")
    args = parser.parse_args(argv)
    proxies = ["proxynow", "traefik"] if args.traefik else ["proxynow"]
    backend = _Backend()
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="acme-issuance-") as tmp:
        factory = PebbleFactory(Path(tmp))
        try:
            for proxy in proxies:
                for run in range(args.runs):
                    seconds = one_run(proxy, Path(tmp), factory, backend.url)
                    results.setdefault(proxy, []).append(seconds)
                    print(f"{proxy} run {run + 1}: {seconds:.2f} s", flush=True)
        finally:
            factory.stop_all()
            backend.close()
    for proxy, times in results.items():
        print(f"{proxy}: median {statistics.median(times):.2f} s start -> first trusted HTTPS")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
