"""The benchmark scenarios and the targets proxynow is judged against.

A scenario is pure data: how the proxy is configured (`Setup`), what wrk sends (`Load`), on how
many cores, and whether the dynamic configuration changes during the run. Targets are data too:
each names the scenario, the metric and the bound; report.py evaluates them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.configs import CHAIN_PREFIX, Setup, router_hosts
from bench.loadgen import Load

ROUTERS = 1000
GZIP = "Accept-Encoding: gzip"


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    load: Load
    setup: Setup = field(default_factory=Setup)
    churn: bool = False  # rewrite the dynamic file every 100 ms for the whole run
    shared_cores: bool = False  # proxy and wrk spread over all cores (the 2-worker case)

    @property
    def body_path(self) -> str:
        return self.load.path

    @property
    def check_host(self) -> str | None:
        """A Host the proxy must route, for the check before measuring."""
        return self.load.hosts[-1] if self.load.hosts else None


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("keepalive-c10", "13 B response, keep-alive, 10 connections", Load(10)),
    Scenario("keepalive-c50", "13 B response, keep-alive, 50 connections", Load(50)),
    Scenario(
        "routers-1",
        "13 B, 50 connections, 1 host-keyed router (the baseline for routers-1000)",
        Load(50, hosts=tuple(router_hosts(1))),
        Setup(routers=1),
    ),
    Scenario(
        "routers-1000",
        "13 B, 50 connections, 1,000 host-keyed routers, Host rotated over all of them",
        Load(50, hosts=tuple(router_hosts(ROUTERS))),
        Setup(routers=ROUTERS),
    ),
    Scenario("body-16k", "16 KiB response, keep-alive, 50 connections", Load(50, "/16k")),
    Scenario("body-1m", "1 MiB response, keep-alive, 10 connections", Load(10, "/1m")),
    Scenario(
        "upload-64k",
        "64 KiB POST upload, 13 B response, 50 connections",
        Load(50, "/upload", post=True),
    ),
    Scenario(
        "conn-close", "13 B, a new TCP connection per request, 50 connections", Load(50, close=True)
    ),
    Scenario(
        "tls-keepalive",
        "HTTPS (ECDSA P-256, TLS 1.3), 13 B, keep-alive, 50 connections",
        Load(50, tls=True),
        Setup(tls=True),
    ),
    Scenario(
        "tls-handshake",
        "HTTPS, 13 B, a new TLS connection (full handshake) per request, 50 connections",
        Load(50, close=True, tls=True),
        Setup(tls=True),
    ),
    Scenario(
        "workers-2",
        "13 B keep-alive, 100 connections, 2 workers on 2 cores (wrk and backend share them)",
        Load(100),
        Setup(workers=2),
        shared_cores=True,
    ),
    Scenario(
        "metrics-c50",
        "keepalive-c50 with Prometheus metrics on (entrypoint, router and service labels)",
        Load(50),
        Setup(metrics=True),
    ),
    Scenario(
        "observed-c50",
        "keepalive-c50 with Prometheus metrics and the access log (JSON, to a file) on",
        Load(50),
        Setup(metrics=True, access_log=True),
    ),
    Scenario(
        "chain5-c50",
        "keepalive-c50 through five middlewares with nothing to do (the issue's chain)",
        Load(50, CHAIN_PREFIX + "/", headers=(GZIP,), backend_path="/"),
        Setup(middlewares="chain5"),
    ),
    Scenario(
        "compress-16k",
        "16 KiB text/plain response gzip-compressed by the proxy, keep-alive, 50 connections",
        Load(50, "/text16k", headers=(GZIP,)),
        Setup(middlewares="compress"),
    ),
    Scenario(
        "h2-tls-c10m10",
        "HTTP/2 over TLS (ALPN h2), 13 B, h2load 10 connections x 10 streams",
        Load(10, tls=True, h2=True, streams=10),
        Setup(tls=True, h2=True),
    ),
    Scenario(
        "h2c-c10m10",
        "prior-knowledge h2c, 13 B, h2load 10 connections x 10 streams",
        Load(10, h2=True, streams=10),
        Setup(h2=True),
    ),
    Scenario(
        "h2-tls-1m",
        "HTTP/2 over TLS, 1 MiB responses, h2load 10 connections x 1 stream",
        Load(10, "/1m", tls=True, h2=True),
        Setup(tls=True, h2=True),
    ),
    Scenario(
        "config-churn",
        "13 B keep-alive, 50 connections, a router added and one removed every 100 ms",
        Load(50),
        churn=True,
    ),
)

BY_NAME = {s.name: s for s in SCENARIOS}


@dataclass(frozen=True)
class Target:
    """`metric` of proxynow in `scenario`, divided by the same metric of `against`, must be at
    least (`at_least`) or at most (not `at_least`) `bound`.

    `against` is another proxy in the same scenario, or `self@<scenario>` for proxynow's own
    figure in another scenario of the same run.
    """

    scenario: str
    metric: str  # "rps" | "p99_us" | "errors"
    against: str
    bound: float
    at_least: bool
    label: str


def _targets() -> tuple[Target, ...]:
    targets: list[Target] = []
    for name in ("keepalive-c10", "keepalive-c50"):
        targets += [
            Target(name, "rps", "traefik", 2.5, True, "RPS ≥ 2.5x Traefik"),
            Target(name, "p99_us", "traefik", 0.5, False, "p99 ≤ ½ Traefik"),
            Target(name, "rps", "nginx", 0.6, True, "RPS ≥ 0.6x nginx"),
        ]
    targets += [
        Target("tls-keepalive", "rps", "traefik", 2.0, True, "RPS ≥ 2x Traefik"),
        Target("tls-handshake", "rps", "traefik", 1.0, True, "handshakes/s ≥ Traefik"),
    ]
    for s in SCENARIOS:
        if not s.name.startswith(
            ("keepalive-", "tls-", "metrics-", "observed-", "chain5-", "compress-", "h2")
        ):
            targets.append(Target(s.name, "rps", "traefik", 1.5, True, "RPS ≥ 1.5x Traefik"))
    targets += [
        Target("routers-1000", "rps", "self@routers-1", 0.95, True, "RPS within 5% of 1 router"),
        Target(
            "config-churn",
            "p99_us",
            "self@keepalive-c50",
            1.10,
            False,
            "p99 within 10% of no changes",
        ),
        Target("config-churn", "errors", "zero", 0.0, False, "0 errors"),
        Target("chain5-c50", "rps", "self@keepalive-c50", 0.85, True, "RPS ≥ 85% of no chain"),
        Target("compress-16k", "rps", "traefik", 1.2, True, "RPS ≥ 1.2x Traefik"),
        Target("h2-tls-c10m10", "rps", "traefik", 1.5, True, "RPS ≥ 1.5x Traefik"),
        Target("h2-tls-c10m10", "p99_us", "traefik", 1.0, False, "p99 ≤ Traefik"),
        Target("h2c-c10m10", "rps", "traefik", 1.5, True, "RPS ≥ 1.5x Traefik"),
        Target("h2c-c10m10", "p99_us", "traefik", 1.0, False, "p99 ≤ Traefik"),
        Target("h2-tls-1m", "rps", "traefik", 1.0, True, "throughput ≥ Traefik"),
        Target("metrics-c50", "rps", "self@keepalive-c50", 0.95, True, "RPS ≥ 95% of no metrics"),
        Target(
            "observed-c50",
            "rps",
            "self@keepalive-c50",
            0.90,
            True,
            "RPS ≥ 90% of neither metrics nor access log",
        ),
    ]
    return tuple(targets)


TARGETS = _targets()


# A scenario whose target compares with another scenario brings that one along.
BASELINES = {
    "routers-1000": "routers-1",
    "config-churn": "keepalive-c50",
    "metrics-c50": "keepalive-c50",
    "observed-c50": "keepalive-c50",
    "chain5-c50": "keepalive-c50",
}


def select(names: list[str] | None) -> list[Scenario]:
    """Scenarios by name (with their baselines), in the canonical order; all when empty."""
    if not names:
        return list(SCENARIOS)
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        known = ", ".join(BY_NAME)
        raise ValueError(f"unknown scenario(s): {', '.join(unknown)} (known: {known})")
    wanted = set(names) | {BASELINES[n] for n in names if n in BASELINES}
    return [s for s in SCENARIOS if s.name in wanted]
