"""Compiling snapshots into RouterGraphs (pure: no sockets are opened)."""

from __future__ import annotations

import ipaddress
from collections import Counter
from typing import Any

from proxynow.config.dynamic import DynamicConfig
from proxynow.config.static import StaticConfig
from proxynow.edge.graph.build import GraphResources, HttpTarget, build_graph, describe, empty_graph
from proxynow.edge.graph.state import WorkerState
from proxynow.rules import SimpleRequest
from proxynow.snapshot import Snapshot

STATIC = StaticConfig.model_validate(
    {
        "entryPoints": {
            "web": {"address": ":80"},
            "websecure": {"address": ":443"},
            "dns": {"address": ":53/udp"},
        }
    }
)


def snapshot(http: dict[str, Any], version: int = 1) -> Snapshot:
    return Snapshot(version=version, config=DynamicConfig.model_validate({"http": http}))


def lb(*urls: str, **options: Any) -> dict[str, Any]:
    return {"loadBalancer": {"servers": [{"url": u} for u in urls], **options}}


def request(host: str = "a.example", path: str = "/") -> SimpleRequest:
    return SimpleRequest(host=host, path=path, client_ip=ipaddress.ip_address("127.0.0.1"))


def match(graph: Any, entrypoint: str, host: str = "a.example") -> HttpTarget | None:
    target: HttpTarget | None = graph.http[entrypoint].match(request(host))
    return target


def test_routers_land_on_their_entrypoints_and_tls_routers_apart() -> None:
    graph = build_graph(
        snapshot(
            {
                "routers": {
                    "both@f": {"rule": "Host(`a.example`)", "service": "s@f"},
                    "web@f": {
                        "rule": "Host(`b.example`)",
                        "service": "s@f",
                        "entryPoints": ["web"],
                    },
                    "tls@f": {"rule": "Host(`c.example`)", "service": "s@f", "tls": {}},
                },
                "services": {"s@f": lb("http://10.0.0.1")},
            }
        ),
        STATIC,
    )
    assert describe(graph) == {"web": ["both@f", "web@f"], "websecure": ["both@f"]}
    assert "dns" not in graph.http
    assert graph.https["websecure"].route_names == ("tls@f",)
    target = match(graph, "web", "b.example")
    assert target is not None and (target.router, target.service) == ("web@f", "s@f")
    assert match(graph, "websecure", "b.example") is None


def test_server_request_facts() -> None:
    graph = build_graph(
        snapshot(
            {
                "routers": {"r@f": {"rule": "PathPrefix(`/`)", "service": "s@f"}},
                "services": {
                    "s@f": {
                        "loadBalancer": {
                            "servers": [
                                {"url": "https://api.example:8443/base/", "preservePath": True}
                            ],
                            "passHostHeader": False,
                        }
                    }
                },
            }
        ),
        STATIC,
    )
    target = match(graph, "web")
    assert target is not None
    server = target.pick()
    assert server is not None
    assert (server.host_header, server.path_prefix, server.pass_host_header) == (
        b"api.example:8443",
        b"/base",
        False,
    )
    key = server.pool.key
    assert (key.scheme, key.host, key.port) == ("https", "api.example", 8443)
    assert key.transport.max_idle_conns_per_host == 200  # static default serversTransport


def test_dynamic_servers_transport_options() -> None:
    graph = build_graph(
        snapshot(
            {
                "routers": {"r@f": {"rule": "PathPrefix(`/`)", "service": "s@f"}},
                "services": {"s@f": lb("http://10.0.0.1:81", serversTransport="t@f")},
                "serversTransports": {
                    "t@f": {"forwardingTimeouts": {"dialTimeout": "2s", "idleConnTimeout": "5s"}}
                },
            }
        ),
        STATIC,
    )
    target = match(graph, "web")
    assert target is not None
    server = target.pick()
    assert server is not None
    options = server.pool.key.transport
    assert (options.name, options.dial_timeout, options.idle_conn_timeout) == ("t@f", 2.0, 5.0)
    assert options.max_idle_conns_per_host == 2  # 0 means Go's default, as in Traefik


def test_weighted_services_nest() -> None:
    graph = build_graph(
        snapshot(
            {
                "routers": {"r@f": {"rule": "PathPrefix(`/`)", "service": "w@f"}},
                "services": {
                    "w@f": {
                        "weighted": {
                            "services": [
                                {"name": "x@f", "weight": 3},
                                {"name": "inner@f", "weight": 1},
                            ]
                        }
                    },
                    "inner@f": {
                        "weighted": {
                            "services": [{"name": "y@f", "weight": 1}, {"name": "z@f", "weight": 1}]
                        }
                    },
                    "x@f": lb("http://10.0.0.1"),
                    "y@f": lb("http://10.0.0.2"),
                    "z@f": lb("http://10.0.0.3"),
                },
            }
        ),
        STATIC,
    )
    target = match(graph, "web")
    assert target is not None
    counts: Counter[str] = Counter()
    for _ in range(80):
        server = target.pick()
        assert server is not None
        counts[server.service] += 1
    assert counts == {"x@f": 60, "y@f": 10, "z@f": 10}


def test_unservable_routers_are_left_out() -> None:
    graph = build_graph(
        snapshot(
            {
                "routers": {
                    "bad-rule@f": {"rule": "Host(`a", "service": "s@f"},
                    "no-service@f": {"rule": "Host(`a.example`)", "service": "missing@f"},
                    "loop@f": {"rule": "Host(`l.example`)", "service": "loop@f"},
                },
                "services": {
                    "s@f": lb("http://10.0.0.1"),
                    "loop@f": {"weighted": {"services": [{"name": "loop@f"}]}},
                },
            }
        ),
        STATIC,
    )
    assert graph.http["web"].route_names == ("loop@f",)
    target = match(graph, "web", "l.example")
    assert target is not None and target.pick() is None  # a cycle serves nothing: 503


def test_graph_swap_keeps_balancer_position_metrics_and_pools() -> None:
    http = {
        "routers": {"r@f": {"rule": "PathPrefix(`/`)", "service": "s@f"}},
        "services": {"s@f": lb("http://10.0.0.1", "http://10.0.0.2", "http://10.0.0.3")},
    }
    state = WorkerState(resources=GraphResources())
    first = state.load(snapshot(http), STATIC)
    target = match(first, "web")
    assert target is not None
    seen = [target.pick().url for _ in range(2)]  # type: ignore[union-attr]
    second = state.load(snapshot(http, version=2), STATIC)
    assert state.graph is second and second.version == 2
    again = match(second, "web")
    assert again is not None and again is not target
    assert again.stats is target.stats
    third = again.pick()
    assert third is not None
    assert sorted([*seen, third.url]) == ["http://10.0.0.1", "http://10.0.0.2", "http://10.0.0.3"]
    assert third.pool is state.resources.pools.get(third.pool.key)


def test_empty_graph_routes_nothing() -> None:
    graph = empty_graph(STATIC)
    assert graph.version == 0
    assert match(graph, "web") is None


def test_unchanged_rules_are_not_parsed_again(caplog: Any) -> None:
    resources = GraphResources()
    services = {"s@f": lb("http://10.0.0.1")}
    first = {
        "kept@f": {"rule": "Host(`a.example`)", "service": "s@f"},
        "gone@f": {"rule": "Host(`b.example`)", "service": "s@f"},
        "bad@f": {"rule": "Host(`c.example`", "service": "s@f"},
    }
    build_graph(snapshot({"routers": first, "services": services}), STATIC, resources)
    kept = resources.rules["Host(`a.example`)"]
    warnings = len(caplog.records)
    assert warnings == 1  # bad@f
    second = {
        "kept@f": first["kept@f"],
        "bad@f": first["bad@f"],
        "new@f": {"rule": "Host(`d.example`)", "service": "s@f"},
    }
    graph = build_graph(snapshot({"routers": second, "services": services}, 2), STATIC, resources)
    assert resources.rules["Host(`a.example`)"] is kept
    assert set(resources.rules) == {"Host(`a.example`)", "Host(`c.example`", "Host(`d.example`)"}
    assert resources.rules["Host(`c.example`"] is None
    assert len(caplog.records) == warnings  # an invalid rule is reported once, not per graph
    assert [
        match(graph, "web", h) is not None for h in ("a.example", "b.example", "d.example")
    ] == [
        True,
        False,
        True,
    ]


def test_default_priority_is_the_rule_as_written_and_ties_follow_provider_precedence() -> None:
    spaced = "Host(`x.example`)     &&     Path(`/a`)"  # 39 characters, 31 once normalised
    graph = build_graph(
        snapshot(
            {
                "routers": {
                    "spaced@f": {"rule": spaced, "service": "s@f"},
                    "prefix@f": {"rule": "Host(`x.example`) && PathPrefix(`/`)", "service": "s@f"},
                    "a@file": {"rule": "Host(`y.example`)", "service": "s@f"},
                    "b@docker": {"rule": "Host(`y.example`)", "service": "s@f"},
                },
                "services": {"s@f": lb("http://10.0.0.1")},
            }
        ),
        STATIC,
    )
    table = graph.http["web"]
    found = table.match(request("x.example", "/a"))
    assert found is not None and found.router == "spaced@f"
    # Equal priority: docker comes before file in Traefik's providers.precedence.
    tied = table.match(request("y.example"))
    assert tied is not None and tied.router == "b@docker"


def test_entrypoint_with_http_tls_terminates_tls_before_any_router_exists() -> None:
    static = StaticConfig.model_validate(
        {"entryPoints": {"websecure": {"address": ":443", "http": {"tls": {}}}}}
    )
    graph = empty_graph(static)
    assert graph.tls_entrypoints == frozenset({"websecure"})
    assert "websecure" in graph.sni
