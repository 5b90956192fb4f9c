"""Domain sets per resolver from a configuration (pure, table-driven)."""

from __future__ import annotations

from typing import Any

import pytest

from proxynow.acme.domains import (
    DomainSet,
    covers,
    delete_unnecessary,
    name_matches,
    sanitize,
    wanted_domains,
)
from proxynow.config.dynamic import DynamicConfig

LE = {"certResolver": "le"}


def http_router(rule: str, resolver: str = "le", **tls: Any) -> dict[str, Any]:
    return {"rule": rule, "service": "s", "tls": {"certResolver": resolver, **tls}}


@pytest.mark.parametrize(
    ("routers", "expected"),
    [
        ({"a": http_router("Host(`A.example.com`)")}, [("a.example.com",)]),
        (
            {"a": http_router("Host(`a.example.com`) || (Host(`b.example.com`) && Path(`/x`))")},
            [("a.example.com", "b.example.com")],
        ),
        # tls.domains wins over the rule; each entry is one certificate.
        (
            {
                "a": http_router(
                    "Host(`ignored.example.com`)",
                    domains=[
                        {"main": "x.example.com", "sans": ["y.example.com"]},
                        {"main": "z.example.com"},
                    ],
                )
            },
            [("x.example.com", "y.example.com"), ("z.example.com",)],
        ),
        # The same set from two routers: one order.
        (
            {"a": http_router("Host(`a.example.com`)"), "b": http_router("Host(`a.example.com`)")},
            [("a.example.com",)],
        ),
        # A set covered by a wider one is dropped (deleteUnnecessaryDomains).
        (
            {
                "a": http_router("Host(`a.example.com`)"),
                "b": http_router("Host(`a.example.com`) || Host(`b.example.com`)"),
            },
            [("a.example.com", "b.example.com")],
        ),
        # No Host(): nothing to order. A router without a resolver: nothing either.
        ({"a": http_router("PathPrefix(`/`)")}, []),
        ({"a": {"rule": "Host(`a.example.com`)", "service": "s", "tls": {}}}, []),
    ],
)
def test_wanted_domains(routers: dict[str, Any], expected: list[tuple[str, ...]]) -> None:
    config = DynamicConfig.model_validate({"http": {"routers": routers}})
    wanted, problems = wanted_domains(config, {"le": False})
    assert [d.names for d in wanted["le"]] == expected
    assert problems == []


def test_tcp_routers_give_their_hostsni_and_skip_the_catch_all() -> None:
    config = DynamicConfig.model_validate(
        {
            "tcp": {
                "routers": {
                    "db": {"rule": "HostSNI(`db.example.com`)", "service": "s", "tls": LE},
                    "all": {"rule": "HostSNI(`*`)", "service": "s", "tls": LE},
                }
            }
        }
    )  # fmt: skip
    wanted, problems = wanted_domains(config, {"le": False})
    assert [d.names for d in wanted["le"]] == [("db.example.com",)]
    assert problems == []


def test_problems_are_reported_per_router() -> None:
    config = DynamicConfig.model_validate(
        {
            "http": {
                "routers": {
                    "a": http_router("Host(`a.example.com`)", resolver="nope"),
                    "w": http_router("Host(`x.example.com`)", domains=[{"main": "*.example.com"}]),
                }
            }
        }
    )
    wanted, problems = wanted_domains(config, {"le": False})
    assert wanted == {"le": []}
    assert problems == [
        "http router a: unknown certificate resolver 'nope'",
        "http router w: wildcard domain '*.example.com' needs the DNS-01 challenge",
    ]


def test_default_generated_cert_asks_its_resolver_for_its_domain() -> None:
    def store(generated: dict[str, Any]) -> DynamicConfig:
        default = {"defaultGeneratedCert": generated}
        return DynamicConfig.model_validate({"tls": {"stores": {"default": default}}})

    wanted, problems = wanted_domains(
        store({"resolver": "le", "domain": {"main": "Default.Example.com", "sans": ["b.test"]}}),
        {"le": False},
    )
    assert [d.names for d in wanted["le"]] == [("default.example.com", "b.test")]
    assert problems == []
    _, problems = wanted_domains(store({"resolver": "nope", "domain": {"main": "a.test"}}), {})
    assert problems == [
        "tls.stores.default.defaultGeneratedCert: unknown certificate resolver 'nope'"
    ]
    _, problems = wanted_domains(store({"resolver": "le"}), {"le": False})
    assert problems == ["tls.stores.default.defaultGeneratedCert: domain.main is required"]


@pytest.mark.parametrize(
    ("names", "dns", "result", "why"),
    [
        (["A.Example.com.", "a.example.com", " b.example.com "], False, ("a.example.com",
         "b.example.com"), ""),
        (["*.example.com"], True, ("*.example.com",), ""),
        (["*.*.example.com"], True, None, "unsupported wildcard domain '*.*.example.com'"),
        (["a.*.example.com"], True, None, "unsupported wildcard domain 'a.*.example.com'"),
        ([""], False, None, "no domain"),
    ],
)  # fmt: skip
def test_sanitize(names: list[str], dns: bool, result: tuple[str, ...] | None, why: str) -> None:
    domain_set, message = sanitize(names, dns_challenge=dns)
    assert (domain_set.names if domain_set else None, message) == (result, why)


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("a.example.com", "a.example.com", True),
        ("*.example.com", "a.example.com", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "a.b.example.com", False),
        ("a.example.com", "b.example.com", False),
    ],
)
def test_name_matches(pattern: str, name: str, matches: bool) -> None:
    assert name_matches(pattern, name) is matches


def test_a_wildcard_set_makes_single_names_unnecessary() -> None:
    sets = [DomainSet(("a.example.com",)), DomainSet(("*.example.com",))]
    assert delete_unnecessary(sets) == [DomainSet(("*.example.com",))]
    assert covers(("*.example.com", "example.com"), ("example.com", "x.example.com"))
