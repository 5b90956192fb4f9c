"""Health in workers, pure: balancer live sets, WorkerHealth over a built graph, failover."""

from __future__ import annotations

import ipaddress
from collections import Counter
from typing import Any

from proxynow.config.dynamic import DynamicConfig
from proxynow.config.static import StaticConfig
from proxynow.edge.balance.wrr import Balancer, BalancerRegistry
from proxynow.edge.graph.build import HttpTarget
from proxynow.edge.graph.state import WorkerState
from proxynow.edge.upstream.health import HealthSet, service_up
from proxynow.rules import SimpleRequest
from proxynow.snapshot import Snapshot

STATIC = StaticConfig.model_validate({"entryPoints": {"web": {"address": ":80"}}})


def picks(balancer: Balancer[str], n: int) -> str:
    return "".join(balancer.pick() or "-" for _ in range(n))


def abc(weights: tuple[float, float, float] = (1, 1, 1)) -> Balancer[str]:
    return Balancer(list(zip("ABC", weights, strict=True)), keys=["a", "b", "c"])


def test_a_down_child_leaves_and_the_others_keep_their_order() -> None:
    balancer = abc()
    assert picks(balancer, 3) == "ACB"
    balancer.set_down(frozenset({"b"}))
    assert set(picks(balancer, 6)) == {"A", "C"}
    assert Counter(picks(balancer, 6)) == {"A": 3, "C": 3}


def test_a_child_coming_back_starts_at_the_current_deadline() -> None:
    # Weights 1: A and C run far ahead while B is down. Back at "now + 1", B is not owed
    # the picks it missed: it takes its plain share from here on.
    balancer = abc()
    balancer.set_down(frozenset({"b"}))
    picks(balancer, 20)
    balancer.set_down(frozenset())
    assert Counter(picks(balancer, 9)) == {"A": 3, "B": 3, "C": 3}


def test_weights_are_kept_among_the_live_children() -> None:
    balancer = abc((3, 1, 1))
    balancer.set_down(frozenset({"c"}))
    order = picks(balancer, 40)
    for i in range(0, 40, 4):
        assert Counter(order[i : i + 4]) == {"A": 3, "B": 1}


def test_all_down_picks_none_and_one_live_child_is_the_fast_path() -> None:
    balancer = abc()
    balancer.set_down(frozenset({"a", "b", "c"}))
    assert balancer.pick() is None
    assert balancer.only is None
    balancer.set_down(frozenset({"a", "b"}))
    assert balancer.only == "C"
    assert picks(balancer, 3) == "CCC"
    balancer.set_down(frozenset())
    assert balancer.only is None
    assert set(picks(balancer, 3)) == {"A", "B", "C"}


def test_a_balancer_without_keys_ignores_health() -> None:
    balancer = Balancer([("A", 1.0), ("B", 1.0)])
    balancer.set_down(frozenset({"A"}))
    assert set(picks(balancer, 4)) == {"A", "B"}


def test_the_registry_keeps_down_children_across_a_rebind() -> None:
    registry = BalancerRegistry()
    first = registry.get("s", ("a", "b"), [("A", 1.0), ("B", 1.0)], ["a", "b"])
    first.set_down(frozenset({"a"}))
    again = registry.get("s", ("a", "b"), [("A2", 1.0), ("B2", 1.0)], ["a", "b"])
    assert again is first
    assert [again.pick() for _ in range(2)] == ["B2", "B2"]
    again.set_down(frozenset())
    assert {again.pick() for _ in range(4)} == {"A2", "B2"}  # the down one was rebound too
    assert registry.find("s") is first
    assert registry.find("t") is None


# ---------------------------------------------------------------- over a built graph


def lb(*urls: str, **options: Any) -> dict[str, Any]:
    return {"loadBalancer": {"servers": [{"url": u} for u in urls], **options}}


def state_for(services: dict[str, Any]) -> tuple[WorkerState, HttpTarget]:
    http = {"routers": {"r@f": {"rule": "PathPrefix(`/`)", "service": "top@f"}}}
    config = DynamicConfig.model_validate({"http": {**http, "services": services}})
    state = WorkerState()
    graph = state.load(Snapshot(version=1, config=config), STATIC)
    request = SimpleRequest(host="x", path="/", client_ip=ipaddress.ip_address("127.0.0.1"))
    target = graph.http["web"].match(request)
    assert target is not None
    return state, target


def served(target: HttpTarget, n: int = 12) -> Counter[str]:
    counts: Counter[str] = Counter()
    for _ in range(n):
        server = target.pick()
        counts[server.url if server is not None else "503"] += 1
    return counts


def test_a_load_balancer_leaves_out_down_servers_and_503s_when_none_is_left() -> None:
    state, target = state_for({"top@f": lb("http://a", "http://b")})
    state.set_health(HealthSet({"top@f": frozenset({"http://a"})}))
    assert served(target) == {"http://b": 12}
    state.set_health(HealthSet({"top@f": frozenset({"http://a", "http://b"})}))
    assert served(target) == {"503": 12}
    state.set_health(HealthSet())
    assert served(target) == {"http://a": 6, "http://b": 6}


def test_health_survives_a_graph_rebuild() -> None:
    services = {"top@f": lb("http://a", "http://b")}
    state, _ = state_for(services)
    state.set_health(HealthSet({"top@f": frozenset({"http://a"})}))
    # A new configuration (new objects throughout): a fresh balancer, same health.
    config = DynamicConfig.model_validate(
        {
            "http": {
                "routers": {"r@f": {"rule": "PathPrefix(`/`)", "service": "top@f"}},
                "services": {"top@f": lb("http://a", "http://b", "http://c")},
            }
        }
    )
    graph = state.load(Snapshot(version=2, config=config), STATIC)
    request = SimpleRequest(host="x", path="/", client_ip=ipaddress.ip_address("127.0.0.1"))
    target = graph.http["web"].match(request)
    assert target is not None
    assert served(target) == {"http://b": 6, "http://c": 6}


WEIGHTED = {
    "top@f": {
        "weighted": {
            "services": [{"name": "one@f", "weight": 1}, {"name": "two@f", "weight": 1}],
            "healthCheck": {},
        }
    },
    "one@f": lb("http://one"),
    "two@f": lb("http://two"),
}


def test_weighted_with_health_check_skips_a_child_without_live_servers() -> None:
    state, target = state_for(WEIGHTED)
    state.set_health(HealthSet({"one@f": frozenset({"http://one"})}))
    assert served(target) == {"http://two": 12}
    state.set_health(HealthSet())
    assert served(target) == {"http://one": 6, "http://two": 6}


def test_weighted_without_health_check_keeps_the_child_and_it_answers_503() -> None:
    services = dict(WEIGHTED)
    services["top@f"] = {"weighted": {"services": WEIGHTED["top@f"]["weighted"]["services"]}}
    state, target = state_for(services)
    state.set_health(HealthSet({"one@f": frozenset({"http://one"})}))
    assert served(target) == {"http://two": 6, "503": 6}


FAILOVER = {
    "top@f": {"failover": {"service": "main@f", "fallback": "spare@f"}},
    "main@f": lb("http://main"),
    "spare@f": lb("http://spare"),
}


def test_failover_serves_the_fallback_while_main_is_down_and_goes_back() -> None:
    state, target = state_for(FAILOVER)
    assert served(target) == {"http://main": 12}
    state.set_health(HealthSet({"main@f": frozenset({"http://main"})}))
    assert served(target) == {"http://spare": 12}
    down = {"main@f": frozenset({"http://main"}), "spare@f": frozenset({"http://spare"})}
    state.set_health(HealthSet(down))
    assert served(target) == {"503": 12}
    state.set_health(HealthSet())
    assert served(target) == {"http://main": 12}


def test_status_propagates_through_weighted_and_failover() -> None:
    weighted = {**WEIGHTED, "w@f": WEIGHTED["top@f"]}
    config = DynamicConfig.model_validate({"http": {"services": {**weighted, **FAILOVER}}})
    services = config.http.services
    assert service_up(services, {}, "top@f")
    down = {"main@f": frozenset({"http://main"})}
    assert service_up(services, down, "top@f")  # the failover's fallback is up
    assert not service_up(services, down, "main@f")
    down = {"main@f": frozenset({"http://main"}), "spare@f": frozenset({"http://spare"})}
    assert not service_up(services, down, "top@f")
    one = {"one@f": frozenset({"http://one"})}
    assert service_up(services, one, "w@f")
    assert not service_up(services, {**one, "two@f": frozenset({"http://two"})}, "w@f")
    assert not service_up(services, {}, "missing@f")
