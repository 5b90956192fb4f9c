"""Label → configuration time for 5,000 synthetic containers (no Docker involved).

The listing is built in memory: a mix of what real hosts run (plain containers on the
default rule, labelled routers with middlewares and TLS, compose services scaled to
several replicas, TCP services, a few malformed labels). It times the whole pure path
the provider runs on a full resynchronisation: per-container decoding
(`container_config`) and the merge plus validation into one `ProviderUpdate`, and
separately the per-event rebuild (one container re-decoded, then the merge). Goal: the
full build under 2 s (Traefik users report minutes on large clusters, traefik#11890).

    .venv/bin/python -m bench.docker_build [--containers 5000] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

from proxynow.providers.docker.build import (
    BuildOptions,
    Container,
    ContainerConfig,
    container_config,
    merge,
)

P = "proxynow."
HTPASSWD = "u:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/"


def synthetic(count: int) -> list[Container]:
    """`count` containers: a fifth of each kind below."""
    containers = []
    for i in range(count):
        kind = i % 5
        labels: dict[str, str] = {}
        if kind == 1:
            labels = {
                P + f"http.routers.r{i}.rule": f"Host(`app{i}.example.com`) && PathPrefix(`/api`)",
                P + f"http.routers.r{i}.entrypoints": "web,websecure",
                P + f"http.routers.r{i}.tls.certresolver": "le",
                P + f"http.routers.r{i}.middlewares": f"auth{i},strip{i}",
                P + f"http.middlewares.auth{i}.basicauth.users": HTPASSWD,
                P + f"http.middlewares.strip{i}.stripprefix.prefixes": "/api",
                P + f"http.services.s{i}.loadbalancer.server.port": "8080",
                P + f"http.services.s{i}.loadbalancer.healthcheck.path": "/health",
            }
        elif kind == 2:
            labels = {
                "com.docker.compose.project": "shop",
                "com.docker.compose.service": f"web{i // 20}",  # 4 replicas per service
                P + f"http.routers.web{i // 20}.rule": f"Host(`web{i // 20}.shop`)",
            }
        elif kind == 3:
            labels = {
                P + f"tcp.routers.db{i}.rule": f"HostSNI(`db{i}.example.com`)",
                P + f"tcp.routers.db{i}.tls.passthrough": "true",
                P + f"tcp.services.db{i}.loadbalancer.server.port": "5432",
            }
        elif kind == 4 and i % 50 == 4:
            labels = {P + f"http.services.bad{i}.loadbalancer.server.port": "eighty"}
        ip = f"10.{i // 65536}.{(i // 256) % 256}.{i % 256}"
        containers.append(
            Container(f"id{i}", f"c{i}", labels, networks={"bridge": ip}, ports=(80,))
        )
    return containers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--containers", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    containers = synthetic(args.containers)
    options = BuildOptions()
    full, event = [], []
    for _ in range(args.runs):
        started = time.perf_counter()
        configs = [container_config(c, options) for c in containers]
        kept: list[ContainerConfig] = [c for c in configs if c is not None]
        update = merge(kept)
        full.append(time.perf_counter() - started)
        started = time.perf_counter()
        kept[len(kept) // 2] = container_config(containers[len(kept) // 2], options) or kept[0]
        merge(kept)
        event.append(time.perf_counter() - started)
    routers = len(update.config.http.routers) + len(update.config.tcp.routers)
    print(
        f"{args.containers} containers -> {routers} routers, "
        f"{len(update.object_errors)} objects with errors"
    )
    print(f"full build  median {statistics.median(full):.3f} s  (runs: "
          + ", ".join(f"{t:.3f}" for t in full) + ")")  # fmt: skip
    print(f"one event   median {statistics.median(event):.3f} s")


if __name__ == "__main__":
    main()
