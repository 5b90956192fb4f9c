"""Compiling TCP routers (pure): tables per entrypoint, service resolution, balancing."""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass
from typing import Any

from proxynow.config.dynamic import DynamicConfig
from proxynow.edge.tcp.routing import TcpRoute, build_tcp_routing, split_host_port


@dataclass(frozen=True)
class View:
    client_ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    sni: str = ""
    alpn: tuple[str, ...] = ()


def routing(tcp: dict[str, Any], entrypoints: list[str] | None = None) -> Any:
    config = DynamicConfig.model_validate({"tcp": tcp})
    return build_tcp_routing(config, entrypoints or ["a", "b"])


def lb(*addresses: str, **options: Any) -> dict[str, Any]:
    return {"loadBalancer": {"servers": [{"address": a} for a in addresses], **options}}


def match(result: Any, entrypoint: str, ip: str = "127.0.0.1") -> TcpRoute | None:
    route: TcpRoute | None = result.tables[entrypoint].match(View(ipaddress.ip_address(ip)))
    return route


def pick(route: TcpRoute) -> tuple[Any, tuple[str, int]]:
    picked = route.pick()
    assert picked is not None
    return picked


def test_router_without_entrypoints_listens_on_all_given() -> None:
    result = routing(
        {
            "routers": {"r@file": {"rule": "HostSNI(`*`)", "service": "s@file"}},
            "services": {"s@file": lb("127.0.0.1:1")},
        }
    )
    assert set(result.tables) == {"a", "b"}


def test_entrypoints_without_tcp_routers_have_no_table() -> None:
    result = routing(
        {
            "routers": {
                "r@file": {"entryPoints": ["a"], "rule": "HostSNI(`*`)", "service": "s@file"}
            },
            "services": {"s@file": lb("127.0.0.1:1")},
        }
    )
    assert set(result.tables) == {"a"}


def test_client_ip_rule_and_priority() -> None:
    result = routing(
        {
            "routers": {
                "all@file": {"rule": "HostSNI(`*`)", "service": "any@file"},
                "lan@file": {
                    "rule": "HostSNI(`*`) && ClientIP(`10.0.0.0/8`)",
                    "service": "lan@file",
                },
            },
            "services": {"any@file": lb("127.0.0.1:1"), "lan@file": lb("127.0.0.1:2")},
        }
    )
    lan = match(result, "a", "10.1.2.3")
    other = match(result, "a", "192.0.2.1")
    assert lan is not None and lan.router == "lan@file"
    assert other is not None and other.router == "all@file"


def test_no_match_is_none() -> None:
    result = routing(
        {
            "routers": {"r@file": {"rule": "ClientIP(`10.0.0.0/8`)", "service": "s@file"}},
            "services": {"s@file": lb("127.0.0.1:1")},
        }
    )
    assert match(result, "a", "127.0.0.1") is None


def test_round_robin_over_servers() -> None:
    result = routing(
        {
            "routers": {"r@file": {"rule": "HostSNI(`*`)", "service": "s@file"}},
            "services": {"s@file": lb("127.0.0.1:1", "127.0.0.1:2", "[::1]:3")},
        }
    )
    route = match(result, "a")
    assert route is not None
    assert [pick(route)[1] for _ in range(6)] == [
        ("127.0.0.1", 1),
        ("127.0.0.1", 2),
        ("::1", 3),
    ] * 2


def test_weighted_services_are_smooth_and_proportional() -> None:
    result = routing(
        {
            "routers": {"r@file": {"rule": "HostSNI(`*`)", "service": "w@file"}},
            "services": {
                "w@file": {
                    "weighted": {
                        "services": [
                            {"name": "x@file", "weight": 3},
                            {"name": "y@file", "weight": 1},
                        ]
                    }
                },
                "x@file": lb("127.0.0.1:1"),
                "y@file": lb("127.0.0.1:2"),
            },
        }
    )
    route = match(result, "a")
    assert route is not None
    ports = [pick(route)[1][1] for _ in range(8)]
    assert Counter(ports) == {1: 6, 2: 2}
    # Smooth (edge/balance/wrr.py): `y` comes within every run of four, not after six `x`.
    assert ports[:4] in ([1, 1, 2, 1], [1, 2, 1, 1])


def test_nested_weighted_services_share_by_weight() -> None:
    # `inner` gets a quarter of the connections and splits it between its two services.
    result = routing(
        {
            "routers": {"r@file": {"rule": "HostSNI(`*`)", "service": "outer@file"}},
            "services": {
                "outer@file": {
                    "weighted": {
                        "services": [
                            {"name": "a@file", "weight": 3},
                            {"name": "inner@file", "weight": 1},
                            {"name": "off@file", "weight": 0},
                        ]
                    }
                },
                "inner@file": {
                    "weighted": {
                        "services": [
                            {"name": "b@file", "weight": 1},
                            {"name": "c@file", "weight": 1},
                        ]
                    }
                },
                "a@file": lb("127.0.0.1:1"),
                "b@file": lb("127.0.0.1:2"),
                "c@file": lb("127.0.0.1:3"),
                "off@file": lb("127.0.0.1:4"),
            },
        }
    )
    route = match(result, "a")
    assert route is not None
    picked = [pick(route) for _ in range(16)]
    assert Counter(server[1] for _, server in picked) == {1: 12, 2: 2, 3: 2}
    assert {target.name for target, _ in picked} == {"a@file", "b@file", "c@file"}


def test_empty_services_pick_nothing() -> None:
    result = routing(
        {
            "routers": {
                "w@file": {"entryPoints": ["a"], "rule": "HostSNI(`*`)", "service": "w@file"},
                "s@file": {"entryPoints": ["b"], "rule": "HostSNI(`*`)", "service": "s@file"},
            },
            "services": {
                "w@file": {"weighted": {"services": [{"name": "s@file", "weight": 0}]}},
                "s@file": {"loadBalancer": {"servers": []}},
            },
        }
    )
    for entrypoint in ("a", "b"):
        route = match(result, entrypoint)
        assert route is not None and route.pick() is None


def test_proxy_protocol_and_termination_delay_resolution() -> None:
    result = routing(
        {
            "routers": {
                "own@file": {"entryPoints": ["a"], "rule": "HostSNI(`*`)", "service": "own@file"},
                "viat@file": {
                    "entryPoints": ["b"],
                    "rule": "HostSNI(`*`)",
                    "service": "viat@file",
                },
            },
            "services": {
                "own@file": lb("127.0.0.1:1", proxyProtocol={"version": 1}, terminationDelay="-1s"),
                "viat@file": lb("127.0.0.1:2", serversTransport="t@file"),
            },
            "serversTransports": {
                "t@file": {
                    "proxyProtocol": {"version": 2},
                    "terminationDelay": "250ms",
                    "dialTimeout": "3s",
                }
            },
        }
    )
    own = match(result, "a")
    viat = match(result, "b")
    assert own is not None and viat is not None
    own_target = pick(own)[0]
    via_target = pick(viat)[0]
    assert (own_target.proxy_protocol, own_target.termination_delay) == (1, -1.0)
    assert (own_target.dial_timeout, via_target.dial_timeout) == (30.0, 3.0)
    assert (via_target.proxy_protocol, via_target.termination_delay) == (2, 0.25)


def test_default_termination_delay_is_100ms_and_no_proxy_protocol() -> None:
    result = routing(
        {
            "routers": {"r@file": {"rule": "HostSNI(`*`)", "service": "s@file"}},
            "services": {"s@file": lb("127.0.0.1:1")},
        }
    )
    route = match(result, "a")
    assert route is not None
    target = pick(route)[0]
    assert (target.proxy_protocol, target.termination_delay) == (0, 0.1)


def test_tls_routers_are_left_for_the_tls_issue() -> None:
    result = routing(
        {
            "routers": {
                "t@file": {"rule": "HostSNI(`a.example`)", "service": "s@file", "tls": {}},
            },
            "services": {"s@file": lb("127.0.0.1:1")},
        }
    )
    assert result.tables == {}


def test_split_host_port() -> None:
    assert split_host_port("backend:8080") == ("backend", 8080)
    assert split_host_port("[2001:db8::1]:443") == ("2001:db8::1", 443)
