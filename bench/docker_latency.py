"""Container start → first successful proxied response, proxynow vs Traefik.

For each proxy in turn (one at a time, on the same dockerd): start it with its Docker
provider restricted to this run's containers, then 20 times: `docker run -d` a busybox
httpd container carrying the same route under both prefixes
(`proxynow.http.routers.rN.rule` and `traefik.http.routers.rN.rule`), and poll the proxy
every 2 ms with that Host until it answers 200. The latency is measured from the moment
`docker run` returns (the container is running) to the first 200; the container is then
removed. Prints p50 and p95 per proxy. Goal for proxynow: p95 under 0.3 s; Traefik waits
for `providersThrottleDuration` (2 s by default) and is left at its defaults.

    .venv/bin/python -m bench.docker_latency [--containers 20] [--no-traefik]

Needs docker.io and busybox-static; dockerd is started (and stopped) if none answers.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import docker
import yaml

from bench.procs import Managed, free_ports, start, stop, wait_until
from tests.support.docker import build_backend_image, ensure_dockerd, stop_dockerd

REPO = Path(__file__).resolve().parents[1]
DEADLINE = 20.0


def _status(port: int, host: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/", headers={"Host": host})
        response = connection.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        connection.close()


def _start_proxy(proxy: str, port: int, run_id: str, workdir: Path) -> Managed:
    constraint = f"Label(`pnbench`,`{run_id}`)"
    if proxy == "proxynow":
        static: dict[str, Any] = {
            "entryPoints": {"web": {"address": f"127.0.0.1:{port}"}},
            "workers": 1,
            "providers": {"docker": {"constraints": constraint}},
        }
        argv = [sys.executable, "-m", "proxynow", "run", "--config"]
    else:
        static = {
            "entryPoints": {"web": {"address": f"127.0.0.1:{port}"}},
            "providers": {"docker": {"constraints": constraint}},
        }
        argv = [str(REPO / ".venv" / "bin" / "traefik"), "--configFile"]
    config = workdir / f"{proxy}.yml"
    config.write_text(yaml.safe_dump(static))
    managed = start(proxy, [*argv, str(config)], "0", workdir / f"{proxy}.log")
    wait_until(lambda: _status(port, "nothing.test") == 404, 30, f"{proxy} to answer", managed)
    return managed


def measure(
    proxy: str, client: docker.DockerClient, image: str, count: int, workdir: Path
) -> list[float]:
    run_id = uuid.uuid4().hex[:8]
    (port,) = free_ports(1)
    managed = _start_proxy(proxy, port, run_id, workdir)
    latencies = []
    try:
        for i in range(count):
            host = f"c{i}-{run_id}.bench"
            labels = {"pnbench": run_id}
            for prefix in ("proxynow", "traefik"):
                labels[f"{prefix}.http.routers.r{i}.rule"] = f"Host(`{host}`)"
            container = client.containers.run(image, detach=True, labels=labels)
            try:
                started = time.perf_counter()
                while _status(port, host) != 200:
                    if time.perf_counter() - started > DEADLINE:
                        raise RuntimeError(f"{proxy}: no route for {host} after {DEADLINE} s")
                    time.sleep(0.002)
                latencies.append(time.perf_counter() - started)
            finally:
                container.remove(force=True)
    finally:
        stop(managed)
    return latencies


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--containers", type=int, default=20)
    parser.add_argument("--no-traefik", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pn-docker-latency-") as directory:
        workdir = Path(directory)
        dockerd = ensure_dockerd(workdir / "dockerd.log")
        client = docker.DockerClient(version="auto")
        tag = f"pnbench-{uuid.uuid4().hex[:8]}:latest"
        try:
            build_backend_image(tag)
            image_id = client.images.get(tag).id
            try:
                proxies = ["proxynow"] if args.no_traefik else ["proxynow", "traefik"]
                for proxy in proxies:
                    values = measure(proxy, client, tag, args.containers, workdir)
                    print(
                        f"{proxy:9} start->first 200 over {len(values)} containers: "
                        f"p50 {statistics.median(values):.3f} s  "
                        f"p95 {_percentile(values, 0.95):.3f} s  max {max(values):.3f} s"
                    )
            finally:
                client.images.remove(image_id, force=True)
        finally:
            client.close()
            if dockerd is not None:
                stop_dockerd(dockerd)


if __name__ == "__main__":
    main()
