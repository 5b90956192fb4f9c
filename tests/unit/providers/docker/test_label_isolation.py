"""One bad label costs its own container's objects, never another container's (issue 18).

Each case puts a container `bad` with one broken label family beside a container `good`
with a plain router, builds the provider's configuration, and runs the real aggregator
over it (`build_snapshot`): `good` serves exactly what it serves alone, and `bad` either
has exactly one object disabled, with its errors (an error that belongs to one
router, service or middleware) or is left out whole with exactly one container error (an
error in the provider's own labels or one no object can carry). Then the deprecated
`ipWhiteList` alias, the network fallback, and a container whose payload the builder
does not expect.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import pytest

from proxynow.config.loader import validate_dynamic
from proxynow.control.aggregator import build_snapshot
from proxynow.providers.base import SECTIONS, ProviderUpdate
from proxynow.providers.docker.build import (
    PLACEHOLDERS,
    BuildOptions,
    Container,
    ContainerConfig,
    container_config,
    container_errors,
    merge,
)
from proxynow.snapshot.merge import EntryPoints

P = "proxynow."
GOOD = Container(
    "id-good", "good", {P + "http.routers.good.rule": "Host(`good`)"},
    networks={"bridge": "10.0.0.2"}, ports=(80,),
)  # fmt: skip
BAD = Container("id-bad", "bad", {}, networks={"bridge": "10.0.0.3"}, ports=(80,))
ENTRY_POINTS = EntryPoints.from_flags({"web": False, "tcp": False, "dns": False})
GOOD_OBJECTS = {"http.routers.good@docker", "http.services.good@docker"}


def _configs(*containers: Container, **options: Any) -> list[ContainerConfig]:
    built = (container_config(c, BuildOptions(**options)) for c in containers)
    return [config for config in built if config is not None]


def _served(update: ProviderUpdate) -> tuple[dict[str, Any], set[str]]:
    """What the aggregator serves from `update` (dumped), and the keys it disabled."""
    snapshot = build_snapshot(1, [update], ENTRY_POINTS)
    disabled = {key for key, status in snapshot.statuses.items() if status.status == "disabled"}
    return snapshot.config.model_dump(by_alias=True, exclude_defaults=True), disabled


# (id, the bad container's labels, the object it disables; "" = the whole container)
OBJECT = "object"
CASES: list[tuple[str, dict[str, str], str]] = [
    ("http router", {P + "http.routers.r.priority": "high"}, "http.routers.r"),
    ("http service", {P + "http.services.s.loadbalancer.server.port": "eighty"},
     "http.services.s"),
    ("http service port section", {P + "http.services.s.loadbalancer.server.port.x": "1"},
     "http.services.s"),
    ("http middleware", {P + "http.middlewares.m.ratelimit.average": "x"}, "http.middlewares.m"),
    ("http middleware type", {P + "http.middlewares.m.frobnicate.level": "3"},
     "http.middlewares.m"),
    ("tcp router", {P + "tcp.routers.t.rule": "HostSNI(`*`)",
                    P + "tcp.routers.t.tls.passthrough": "maybe"}, "tcp.routers.t"),
    ("tcp service", {P + "tcp.services.t.loadbalancer.server.port": "x"}, "tcp.services.t"),
    ("tcp service port section", {P + "tcp.services.t.loadbalancer.server.port.x": "1"},
     "tcp.services.t"),
    ("tcp middleware inflightconn", {P + "tcp.middlewares.m.inflightconn.amount": "x"},
     "tcp.middlewares.m"),
    ("tcp middleware type", {P + "tcp.middlewares.m.frobnicate.level": "1"},
     "tcp.middlewares.m"),
    ("tcp middleware incomplete", {P + "tcp.middlewares.m": "x"}, "tcp.middlewares.m"),
    ("tcp servers transport", {P + "tcp.serverstransports.st.dialtimeout": "soon"},
     "tcp.serversTransports.st"),
    ("udp router", {P + "udp.routers.u.rule": "x"}, "udp.routers.u"),
    ("udp service", {P + "udp.services.u.loadbalancer.server.port": "x"}, "udp.services.u"),
    ("udp middleware section", {P + "udp.middlewares.m.x": "1"}, ""),
    ("unknown section", {P + "http.routerz.r.rule": "Host(`b`)"}, ""),
    ("section without a name", {P + "tcp.routers": "x"}, ""),
    ("enable", {P + "enable": "maybe"}, ""),
    ("docker.allownonrunning", {P + "docker.allownonrunning": "perhaps"}, ""),
    ("docker.lbswarm", {P + "docker.lbswarm": "2"}, ""),
    ("docker unknown key", {P + "docker.netwrok": "front"}, ""),
]  # fmt: skip


@pytest.mark.parametrize(("labels", "culprit"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_label_beside_a_good_container(labels: dict[str, str], culprit: str) -> None:
    alone, _ = _served(merge(_configs(GOOD)))
    configs = _configs(GOOD, replace(BAD, labels=labels))
    update = merge(configs)
    served, disabled = _served(update)
    assert served == alone if not culprit else _without_bad(served) == alone
    problems = container_errors(configs)
    if culprit:
        assert problems == ()
        assert set(update.object_errors) == {culprit}
        assert update.object_errors[culprit]  # (an incomplete key also says "no type")
        assert f"{culprit}@docker" in disabled and not disabled & GOOD_OBJECTS
    else:
        assert update.object_errors == {} and disabled == set()
        assert len(problems) == 1 and problems[0].startswith("container 'bad': "), problems


def _without_bad(served: dict[str, Any]) -> dict[str, Any]:
    """The served configuration minus what the bad container still serves beside its
    disabled object (its automatic service, or the router that does not use it)."""
    result: dict[str, Any] = {}
    for protocol, sections in served.items():
        for section, objects in sections.items():
            kept = {name: body for name, body in objects.items() if not _from_bad(name, body)}
            if kept:
                result.setdefault(protocol, {})[section] = kept
    return result


def _from_bad(name: str, body: Any) -> bool:
    text = repr(body)
    return name.startswith("bad@") or "10.0.0.3" in text or "service': 'bad@" in text


def test_a_bad_label_costs_only_the_object_it_belongs_to() -> None:
    labels = {
        P + "http.routers.web.rule": "Host(`bad`)",
        P + "tcp.middlewares.m.inflightconn.amount": "x",
    }
    served, disabled = _served(merge(_configs(GOOD, replace(BAD, labels=labels))))
    assert disabled == {"tcp.middlewares.m@docker"}
    assert served["http"]["routers"]["web@docker"]["rule"] == "Host(`bad`)"  # fmt: skip


_SEGMENTS = (
    ("http", "tcp", "udp"),
    ("routers", "services", "middlewares", "serverstransports", "foo"),
    ("n", "N"),
    ("rule", "entrypoints", "priority", "service", "middlewares", "tls", "tls.passthrough",
     "tls.domains[0].main", "rule[0]", "[0]", "loadbalancer", "loadbalancer.server",
     "loadbalancer.server.port", "loadbalancer.server.port.x", "loadbalancer.server.url",
     "loadbalancer.servers[0].url", "loadbalancer.sticky.cookie",
     "loadbalancer.healthcheck.interval",
     "weighted.services[0].name", "inflightconn.amount", "ipwhitelist.sourcerange",
     "ratelimit.average", "headers.customrequestheaders.X", "chain.middlewares", "foo.bar",
     "loadbalancer.proxyprotocol.version", "loadbalancer.terminationdelay"),
)  # fmt: skip
_VALUES = ("x", "1", "true", "", "10.0.0.0/8", "HostSNI(`*`)", "70000", "a,b")


def test_no_label_shape_makes_the_builder_raise() -> None:
    # What found the original bug: random label shapes, none may reach the catch-all.
    chooser = random.Random(18)
    for _ in range(1500):
        labels = {
            P + ".".join(chooser.choice(options) for options in _SEGMENTS): chooser.choice(_VALUES)
            for _ in range(chooser.randint(1, 4))
        }
        for config in _configs(replace(BAD, labels=labels)):
            assert not any("internal error" in e for e in config.container_errors), labels


def test_an_unexpected_payload_costs_only_its_container() -> None:
    # A label value that is not text (no Docker API sends one): the builder raises inside,
    # and only this container is left out, with its error.
    odd = replace(BAD, labels={P + "http.routers.r.entrypoints": 5})  # type: ignore[dict-item]
    configs = _configs(GOOD, odd)
    served, _ = _served(merge(configs))
    alone, _ = _served(merge(_configs(GOOD)))
    assert served == alone
    (problem,) = container_errors(configs)
    assert problem.startswith("container 'bad': ") and "AttributeError" in problem


def test_every_placeholder_validates_alone() -> None:
    for protocol, section, _ in SECTIONS:
        body = PLACEHOLDERS[(protocol, section)]
        validate_dynamic({protocol: {section: {"x": body}}})  # raises if it does not


# ---------------------------------------------------------------- ipWhiteList (deprecated)


@pytest.mark.parametrize("protocol", ["http", "tcp"])
def test_ipwhitelist_is_the_deprecated_ipallowlist(protocol: str) -> None:
    labels = {P + f"{protocol}.middlewares.w.ipwhitelist.sourcerange": "10.0.0.0/8, 192.168.0.0/16"}
    (config,) = _configs(replace(BAD, labels=labels))
    update = merge([config])
    assert update.object_errors == {}
    dumped = update.config.model_dump(by_alias=True, exclude_defaults=True)
    assert dumped[protocol]["middlewares"]["w"] == {
        "ipAllowList": {"sourceRange": ["10.0.0.0/8", "192.168.0.0/16"]}
    }
    assert config.warnings == (
        f"container 'bad': {protocol}.middlewares.w: ipWhiteList is deprecated, use ipAllowList",
    )


# ---------------------------------------------------------------- network fallback


@pytest.mark.parametrize(
    ("labels", "options"),
    [({P + "docker.network": "nosuch"}, {}), ({}, {"network": "nosuch"})],
    ids=["label", "option"],
)
def test_missing_network_falls_back_with_a_warning(
    labels: dict[str, str], options: dict[str, Any]
) -> None:
    container = replace(BAD, labels=labels, networks={"zeta": "10.0.1.3", "alpha": "10.0.2.3"})
    (config,) = _configs(container, **options)
    update = merge([config])
    assert update.object_errors == {}
    balancer = update.config.http.services["bad"].load_balancer
    assert balancer is not None and [s.url for s in balancer.servers] == ["http://10.0.2.3:80"]
    assert config.warnings == (
        "container 'bad': network 'nosuch' is not attached (attached: alpha, zeta); using 'alpha'",
    )


def test_network_fallback_prefers_proxynows_own_network() -> None:
    container = replace(
        BAD,
        labels={P + "docker.network": "nosuch"},
        networks={"zeta": "10.0.1.3", "alpha": "10.0.2.3"},
    )
    (config,) = _configs(container, own_networks=frozenset({"zeta"}))
    balancer = merge([config]).config.http.services["bad"].load_balancer
    assert balancer is not None and balancer.servers[0].url == "http://10.0.1.3:80"


def test_no_network_at_all_is_still_an_error_on_the_service() -> None:
    (config,) = _configs(replace(BAD, labels={P + "docker.network": "nosuch"}, networks={}))
    assert merge([config]).object_errors == {
        "http.services.bad": ("container 'bad' has no IP address on any network",)
    }
