"""Aggregator: qualification, reference checks, error isolation, versioning, coalescing.

The merge is a pure function, so most cases are a table: providers' configurations in
(written as the YAML a user would write), the statuses that must come out. The asyncio
shell is driven with a manual clock: the throttle waits on it, so a test decides when a
window ends and counts snapshots instead of measuring time.
"""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from proxynow.config.dynamic import DynamicConfig
from proxynow.control import middleware_support
from proxynow.control.aggregator import (
    Aggregator,
    BuildCache,
    EntryPoints,
    build_snapshot,
)
from proxynow.providers.base import ProviderUpdate
from proxynow.rules import RuleError, parse_rule
from proxynow.snapshot import ObjectStatus, Snapshot

EP = EntryPoints.from_flags({"web": False, "websecure": False})
LB = {"loadBalancer": {"servers": [{"url": "http://127.0.0.1:8080"}]}}
TCP_LB = {"loadBalancer": {"servers": [{"address": "127.0.0.1:5432"}]}}
REDIRECT = {"redirectScheme": {"scheme": "https"}}  # a type the data plane applies
NOT_APPLIED = "middleware type {} is not implemented yet; routers that use it are served without it"
NOT_ENFORCED = (
    "middleware type {} is not implemented yet; the routers that use it are disabled rather "
    "than served without it"
)


def router(service: str = "svc", rule: str = "Host(`a.test`)", **extra: Any) -> dict[str, Any]:
    return {"rule": rule, "service": service, **extra}


def http(**sections: Any) -> dict[str, Any]:
    return {"http": sections}


def build(
    providers: dict[str, dict[str, Any]],
    *,
    entry_points: EntryPoints = EP,
    internal: frozenset[str] = frozenset(),
    object_errors: dict[str, dict[str, tuple[str, ...]]] | None = None,
) -> Snapshot:
    updates = [
        ProviderUpdate(name, DynamicConfig.model_validate(raw), (object_errors or {}).get(name, {}))
        for name, raw in providers.items()
    ]
    return build_snapshot(1, updates, entry_points, internal)


def rule_error(text: str, kind: str = "http") -> str:
    try:
        parse_rule(text, "tcp" if kind == "tcp" else "http")
    except RuleError as error:
        return f"rule: {error}"
    raise AssertionError(f"{text!r} parses")


def enabled(provider: str) -> ObjectStatus:
    return ObjectStatus("enabled", (), provider)


def disabled(provider: str, *errors: str) -> ObjectStatus:
    return ObjectStatus("disabled", errors, provider)


def warning(provider: str, *errors: str) -> ObjectStatus:
    return ObjectStatus("warning", errors, provider)


@dataclass
class Case:
    id: str
    providers: dict[str, dict[str, Any]]
    expected: dict[str, ObjectStatus]
    internal: frozenset[str] = frozenset()
    object_errors: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)


CASES = [
    Case(
        "cross-provider reference",
        {
            "docker": http(routers={"web": router("api@file")}),
            "file": http(services={"api": LB}),
        },
        {"http.routers.web@docker": enabled("docker"), "http.services.api@file": enabled("file")},
    ),
    Case(
        "unqualified reference means own provider",
        {"docker": http(routers={"web": router("svc")}, services={"svc": LB})},
        {"http.routers.web@docker": enabled("docker")},
    ),
    Case(
        "unqualified reference does not reach another provider",
        {"docker": http(routers={"web": router("svc")}), "file": http(services={"svc": LB})},
        {"http.routers.web@docker": disabled("docker", "service svc@docker does not exist")},
    ),
    Case(
        "one bad rule disables only its router",
        {
            "file": http(
                routers={"bad": router(rule="Host(`a.test`) &&"), "good": router()},
                services={"svc": LB},
            )
        },
        {
            "http.routers.bad@file": disabled("file", rule_error("Host(`a.test`) &&")),
            "http.routers.good@file": enabled("file"),
            "http.services.svc@file": enabled("file"),
        },
    ),
    Case(
        "empty rule",
        {"file": http(routers={"r": router(rule="")}, services={"svc": LB})},
        {"http.routers.r@file": disabled("file", rule_error(""))},
    ),
    Case(
        "router without service",
        {"file": http(routers={"r": {"rule": "Path(`/`)"}})},
        {"http.routers.r@file": disabled("file", "the router has no service")},
    ),
    Case(
        "unknown middleware",
        {"file": http(routers={"r": router(middlewares=["nope"])}, services={"svc": LB})},
        {"http.routers.r@file": disabled("file", "middleware nope@file does not exist")},
    ),
    Case(
        "middleware from another provider",
        {
            "docker": http(routers={"r": router(middlewares=["h@file"])}, services={"svc": LB}),
            "file": http(middlewares={"h": REDIRECT}),
        },
        {"http.routers.r@docker": enabled("docker"), "http.middlewares.h@file": enabled("file")},
    ),
    Case(
        "unknown entrypoint among valid ones is a warning",
        {"file": http(routers={"r": router(entryPoints=["web", "nope"])}, services={"svc": LB})},
        {"http.routers.r@file": warning("file", "entryPoint 'nope' does not exist")},
    ),
    Case(
        "only unknown entrypoints disable the router",
        {"file": http(routers={"r": router(entryPoints=["nope"])}, services={"svc": LB})},
        {
            "http.routers.r@file": disabled(
                "file", "entryPoint 'nope' does not exist", "no valid entryPoint for this router"
            )
        },
    ),
    Case(
        "tcp router to an http service",
        {
            "file": {
                "http": {"services": {"svc": LB}},
                "tcp": {"routers": {"db": {"rule": "HostSNI(`*`)", "service": "svc"}}},
            }
        },
        {
            "tcp.routers.db@file": disabled(
                "file", "service svc@file is a HTTP service; a TCP object needs a TCP service"
            )
        },
    ),
    Case(
        "tcp router and service",
        {
            "file": {
                "tcp": {
                    "routers": {"db": {"rule": "HostSNI(`*`)", "service": "pg"}},
                    "services": {"pg": TCP_LB},
                }
            }
        },
        {"tcp.routers.db@file": enabled("file"), "tcp.services.pg@file": enabled("file")},
    ),
    Case(
        "tcp rule error",
        {
            "file": {
                "tcp": {
                    "routers": {"db": {"rule": "Host(`a`)", "service": "pg"}},
                    "services": {"pg": TCP_LB},
                }
            }
        },
        {"tcp.routers.db@file": disabled("file", rule_error("Host(`a`)", "tcp"))},
    ),
    Case(
        "chain to unknown middleware, propagated to the router",
        {
            "file": http(
                routers={"r": router(middlewares=["c"])},
                services={"svc": LB},
                middlewares={"c": {"chain": {"middlewares": ["h", "nope"]}}, "h": REDIRECT},
            )
        },
        {
            "http.middlewares.c@file": disabled("file", "middleware nope@file does not exist"),
            "http.middlewares.h@file": enabled("file"),
            "http.routers.r@file": disabled(
                "file", "middleware c@file is disabled: middleware nope@file does not exist"
            ),
        },
    ),
    Case(
        "chain cycle",
        {
            "file": http(
                middlewares={
                    "a": {"chain": {"middlewares": ["b"]}},
                    "b": {"chain": {"middlewares": ["a"]}},
                    "c": {"chain": {"middlewares": ["a"]}},
                }
            )
        },
        {
            "http.middlewares.a@file": disabled("file", "cycle: a@file -> b@file -> a@file"),
            "http.middlewares.b@file": disabled("file", "cycle: a@file -> b@file -> a@file"),
            "http.middlewares.c@file": disabled(
                "file", "middleware a@file is disabled: cycle: a@file -> b@file -> a@file"
            ),
        },
    ),
    Case(
        "weighted self cycle",
        {"file": http(services={"w": {"weighted": {"services": [{"name": "w"}]}}})},
        {"http.services.w@file": disabled("file", "cycle: w@file -> w@file")},
    ),
    Case(
        "weighted, mirroring and failover to unknown services",
        {
            "file": http(
                services={
                    "ok": LB,
                    "w": {"weighted": {"services": [{"name": "ok"}, {"name": "x"}]}},
                    "m": {"mirroring": {"service": "ok", "mirrors": [{"name": "y"}]}},
                    "f": {"failover": {"service": "ok", "fallback": "z@docker"}},
                }
            )
        },
        {
            "http.services.ok@file": enabled("file"),
            "http.services.w@file": disabled("file", "service x@file does not exist"),
            "http.services.m@file": disabled("file", "service y@file does not exist"),
            "http.services.f@file": disabled("file", "service z@docker does not exist"),
        },
    ),
    Case(
        "load balancer without servers is a warning and still serves",
        {"file": http(routers={"r": router()}, services={"svc": {"loadBalancer": {}}})},
        {
            "http.services.svc@file": warning(
                "file", "loadBalancer has no servers (it answers 503)"
            ),
            "http.routers.r@file": enabled("file"),
        },
    ),
    Case(
        "disabled service disables its router, naming the cause",
        {
            "file": http(
                routers={"r": router()},
                services={"svc": {"loadBalancer": {**LB["loadBalancer"], "serversTransport": "t"}}},
            )
        },
        {
            "http.services.svc@file": disabled("file", "serversTransport t@file does not exist"),
            "http.routers.r@file": disabled(
                "file", "service svc@file is disabled: serversTransport t@file does not exist"
            ),
        },
    ),
    Case(
        "servers transport from another provider",
        {
            "docker": http(
                services={
                    "svc": {"loadBalancer": {**LB["loadBalancer"], "serversTransport": "t@file"}}
                }
            ),
            "file": http(serversTransports={"t": {"insecureSkipVerify": True}}),
        },
        {"http.services.svc@docker": enabled("docker")},
    ),
    Case(
        "unknown TLS options",
        {"file": http(routers={"r": router(tls={"options": "strict"})}, services={"svc": LB})},
        {"http.routers.r@file": disabled("file", "TLS options strict@file do not exist")},
    ),
    Case(
        "TLS options of the own provider and the default",
        {
            "file": {
                **http(
                    routers={"r": router(tls={"options": "strict"}), "d": router(tls={})},
                    services={"svc": LB},
                ),
                "tls": {"options": {"strict": {"sniStrict": True}}},
            }
        },
        {"http.routers.r@file": enabled("file"), "http.routers.d@file": enabled("file")},
    ),
    Case(
        "default TLS options from two providers",
        {
            "file": {
                **http(routers={"r": router(tls={})}, services={"svc": LB}),
                "tls": {"options": {"default": {}}},
            },
            "other": {"tls": {"options": {"default": {"sniStrict": True}}}},
        },
        {
            "http.routers.r@file": disabled(
                "file", "TLS options 'default' are defined by several providers (file, other)"
            ),
            "tls.options.default": disabled(
                "", "TLS options 'default' are defined by several providers (file, other)"
            ),
        },
    ),
    Case(
        "internal service enabled by the control plane",
        {"file": http(routers={"api": router("api@internal"), "d": router("dashboard@internal")})},
        {
            "http.routers.api@file": enabled("file"),
            "http.routers.d@file": disabled("file", "service dashboard@internal does not exist"),
        },
        internal=frozenset({"api"}),
    ),
    Case(
        "errors middleware to an unknown service",
        {"file": http(middlewares={"e": {"errors": {"status": ["500"], "service": "pages"}}})},
        {"http.middlewares.e@file": disabled("file", "service pages@file does not exist")},
    ),
    Case(
        "a servers transport with an unknown cipher suite disables its services",
        {
            "file": http(
                routers={"r": router()},
                services={"svc": {"loadBalancer": {**LB["loadBalancer"], "serversTransport": "t"}}},
                serversTransports={
                    "t": {"cipherSuites": ["TLS_NOPE"], "maxVersion": "VersionTLS12"}
                },
            )
        },
        {
            "http.serversTransports.t@file": disabled("file", "unknown cipher suite 'TLS_NOPE'"),
            "http.services.svc@file": disabled("file", "serversTransport t@file is disabled"),
        },
    ),
    Case(
        "mirroring with its main service and mirrors defined serves, without a warning",
        {
            "file": http(
                services={
                    "main": LB,
                    "copy": LB,
                    "m": {"mirroring": {"service": "main", "mirrors": [{"name": "copy"}]}},
                }
            )
        },
        {"http.services.m@file": enabled("file")},
    ),
    Case(
        "service options not applied yet are warnings on the service",
        {
            "file": http(
                services={
                    "p": {"loadBalancer": {**LB["loadBalancer"], "strategy": "p2c"}},
                    "l": {"loadBalancer": {**LB["loadBalancer"], "strategy": "leasttime"}},
                    "h": {
                        "loadBalancer": {
                            **LB["loadBalancer"],
                            "strategy": "hrw",
                            "sticky": {"cookie": {}},
                        }
                    },
                    "f": {
                        "failover": {
                            "service": "p",
                            "fallback": "h",
                            "errors": {"status": ["500-599"]},
                        }
                    },
                }
            )
        },
        {
            "http.services.p@file": enabled("file"),  # p2c is applied: no warning
            "http.services.l@file": enabled("file"),
            "http.services.h@file": warning(
                "file", "sticky.cookie does not apply to strategy hrw (as in Traefik)"
            ),
            "http.services.f@file": warning(
                "file",
                "failover errors and maxRequestBodyBytes are not implemented yet: the "
                "fallback serves only while the main service has no live server",
            ),
        },
    ),
    Case(
        "an applied basicAuth serves its routers; a malformed users entry disables them",
        {
            "file": http(
                routers={"r": router(middlewares=["auth"]), "bad": router(middlewares=["broken"])},
                services={"svc": LB},
                middlewares={
                    "auth": {"basicAuth": {"users": ["u:$apr1$x$y"]}},
                    "broken": {"basicAuth": {"users": ["no-hash-here"]}},
                },
            )
        },
        {
            "http.middlewares.auth@file": enabled("file"),
            "http.routers.r@file": enabled("file"),
            "http.middlewares.broken@file": disabled(
                "file", "basicAuth: a users entry is not user:hash"
            ),
            "http.routers.bad@file": disabled(
                "file",
                "middleware broken@file is disabled: basicAuth: a users entry is not user:hash",
            ),
        },
    ),
    Case(
        "a TCP ipAllowList is applied; one with an empty sourceRange disables its router",
        {
            "file": {
                "tcp": {
                    "routers": {
                        "t": {"rule": "HostSNI(`*`)", "service": "s", "middlewares": ["w"]},
                        "u": {"rule": "HostSNI(`*`)", "service": "s", "middlewares": ["e"]},
                    },
                    "services": {"s": {"loadBalancer": {"servers": [{"address": "127.0.0.1:1"}]}}},
                    "middlewares": {
                        "w": {"ipAllowList": {"sourceRange": ["127.0.0.1/32"]}},
                        "e": {"ipAllowList": {"sourceRange": []}},
                    },
                }
            }
        },
        {
            "tcp.middlewares.w@file": enabled("file"),
            "tcp.routers.t@file": enabled("file"),
            "tcp.middlewares.e@file": disabled("file", "ipAllowList: sourceRange is empty"),
            "tcp.routers.u@file": disabled(
                "file",
                "middleware e@file is disabled: ipAllowList: sourceRange is empty",
            ),
        },
    ),
    Case(
        "a name with @ is rejected",
        {"file": http(services={"a@b": LB})},
        {
            "http.services.a@b@file": disabled(
                "file", "name 'a@b' must not contain '@' (it is reserved for references)"
            )
        },
    ),
    Case(
        "errors reported by the provider disable the object",
        {"file": http(routers={"r": router()}, services={"svc": LB})},
        {
            "http.services.svc@file": disabled("file", "defined in a.yml and b.yml"),
            "http.routers.r@file": disabled(
                "file", "service svc@file is disabled: defined in a.yml and b.yml"
            ),
        },
        object_errors={"file": {"http.services.svc": ("defined in a.yml and b.yml",)}},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_statuses(case: Case) -> None:
    snapshot = build(case.providers, internal=case.internal, object_errors=case.object_errors)
    actual = {key: snapshot.statuses.get(key) for key in case.expected}
    assert actual == case.expected
    for key, status in case.expected.items():
        protocol, section, name = key.split(".", 2)
        if protocol == "tls":
            continue
        attribute = {"serversTransports": "servers_transports"}.get(section, section)
        served = name in getattr(getattr(snapshot.config, protocol), attribute)
        off = name in getattr(getattr(snapshot.disabled, protocol), attribute)
        assert (served, off) == (status.serves, not status.serves), key


def test_references_are_rewritten_to_qualified_names() -> None:
    snapshot = build(
        {
            "docker": http(
                routers={
                    "r": router("svc", middlewares=["h", "c@file"], tls={"options": "o@file"})
                },
                services={"svc": LB, "w": {"weighted": {"services": [{"name": "svc"}]}}},
                middlewares={"h": REDIRECT},
            ),
            "file": {
                **http(middlewares={"c": {"chain": {"middlewares": ["h@docker"]}}}),
                "tls": {"options": {"o": {}}},
            },
        }
    )
    routed = snapshot.config.http.routers["r@docker"]
    assert routed.service == "svc@docker"
    assert routed.middlewares == ["h@docker", "c@file"]
    assert routed.tls is not None and routed.tls.options == "o@file"
    assert routed.entry_points == ["web", "websecure"]
    weighted = snapshot.config.http.services["w@docker"].weighted
    assert weighted is not None and weighted.services[0].name == "svc@docker"
    chain = snapshot.config.http.middlewares["c@file"].chain
    assert chain is not None and chain.middlewares == ["h@docker"]
    assert set(snapshot.config.tls.options) == {"default", "o@file"}


def test_default_entry_points_are_the_as_default_ones() -> None:
    entry_points = EntryPoints.from_flags({"web": False, "websecure": True, "admin": True})
    snapshot = build(
        {"file": http(routers={"r": router()}, services={"svc": LB})}, entry_points=entry_points
    )
    assert snapshot.config.http.routers["r@file"].entry_points == ["admin", "websecure"]


def test_served_router_keeps_only_known_entry_points() -> None:
    snapshot = build(
        {"file": http(routers={"r": router(entryPoints=["nope", "web"])}, services={"svc": LB})}
    )
    assert snapshot.config.http.routers["r@file"].entry_points == ["web"]


def test_snapshot_pickles() -> None:
    snapshot = build(
        {"file": http(routers={"r": router(), "bad": router("nope")}, services={"svc": LB})}
    )
    copy = pickle.loads(pickle.dumps(snapshot))
    assert copy == snapshot
    assert copy.disabled.http.routers["bad@file"].service == "nope@file"


# ---------------------------------------------------------------- the asyncio shell


class ManualClock:
    """An injectable `sleep` that returns only when the test says the window is over."""

    def __init__(self) -> None:
        self.windows: list[asyncio.Future[None]] = []

    async def sleep(self, seconds: float) -> None:
        window: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.windows.append(window)
        await window

    @property
    def in_window(self) -> bool:
        return bool(self.windows) and not self.windows[-1].done()

    def end_window(self) -> None:
        self.windows[-1].set_result(None)


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not reached before the deadline"
        await asyncio.sleep(0.005)


def services_update(provider: str, count: int) -> ProviderUpdate:
    raw = http(routers={"r": router()}, services={"svc": LB, **{f"s{i}": LB for i in range(count)}})
    return ProviderUpdate(provider, DynamicConfig.model_validate(raw))


@pytest.fixture
async def shell() -> Any:
    clock = ManualClock()
    published: list[Snapshot] = []
    aggregator = Aggregator(EP, published.append, sleep=clock.sleep)
    task = asyncio.create_task(aggregator.run(), name="aggregator")
    yield aggregator, clock, published
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_first_change_is_published_at_once_and_a_burst_is_coalesced(shell: Any) -> None:
    aggregator, clock, published = shell
    aggregator.submit(services_update("file", 0))
    await until(lambda: len(published) == 1 and clock.in_window)
    assert published[0].version == 1
    for count in range(1, 51):
        aggregator.submit(services_update("file", count))
    assert len(published) == 1  # nothing leaves during the window
    clock.end_window()
    await until(lambda: len(published) == 2 and clock.in_window)
    assert published[1].version == 2
    assert "s49@file" in published[1].config.http.services  # the last one wins
    assert aggregator.current is published[1]
    clock.end_window()
    await until(lambda: len(clock.windows) == 2 and not clock.in_window)
    assert len(published) == 2


async def test_unchanged_configuration_makes_no_new_version(shell: Any) -> None:
    aggregator, clock, published = shell
    aggregator.submit(services_update("file", 1))
    await until(lambda: len(published) == 1 and clock.in_window)
    aggregator.submit(services_update("file", 1))  # equal: dropped on arrival
    aggregator.submit(services_update("file", 2))
    aggregator.submit(services_update("file", 1))  # back to what is published
    clock.end_window()
    await until(lambda: len(clock.windows) == 1 and clock.windows[0].done())
    aggregator.submit(services_update("docker", 0))
    await until(lambda: len(published) == 2)
    assert [snapshot.version for snapshot in published] == [1, 2]
    assert set(published[1].config.http.routers) == {"r@docker", "r@file"}


async def test_providers_are_kept_apart(shell: Any) -> None:
    aggregator, clock, published = shell
    aggregator.submit(services_update("file", 0))
    aggregator.submit(services_update("docker", 0))
    await until(lambda: len(published) == 1 and clock.in_window)
    aggregator.submit(services_update("docker", 3))
    clock.end_window()
    await until(lambda: len(published) == 2)
    services = published[1].config.http.services
    assert {"svc@file", "s2@docker"} <= set(services) and "s0@file" not in services


def test_provider_errors_are_kept_until_cleared(caplog: pytest.LogCaptureFixture) -> None:
    aggregator = Aggregator(EP, lambda snapshot: None)
    aggregator.report_errors("file", ["a.yml:3:1: bad"])
    aggregator.report_errors("file", ["a.yml:3:1: bad"])
    assert aggregator.provider_errors == {"file": ("a.yml:3:1: bad",)}
    assert [r.getMessage() for r in caplog.records].count("provider file: a.yml:3:1: bad") == 1
    aggregator.report_errors("file", [])
    assert aggregator.provider_errors == {}


def test_reserved_provider_name_is_refused() -> None:
    aggregator = Aggregator(EP, lambda snapshot: None)
    with pytest.raises(ValueError, match="reserved"):
        aggregator.submit(ProviderUpdate("internal", DynamicConfig()))


# ---------------------------------------------------------------- reuse between builds


def test_a_build_cache_reuses_the_derived_objects_of_unchanged_provider_objects() -> None:
    first = DynamicConfig.model_validate(
        http(
            routers={"a": router(), "b": router(rule="Host(`b.test`)")},
            services={"svc": LB},
        )
    )
    cache = BuildCache()
    one = build_snapshot(1, [ProviderUpdate("file", first, {})], EP, cache=cache)
    # The provider hands unchanged objects over as the same objects (DynamicFileLoader).
    routers = dict(first.http.routers)
    routers["b"] = first.http.routers["b"].model_copy(update={"rule": "Host(`b"})
    routers["c"] = first.http.routers["a"].model_copy(update={"rule": "Host(`c.test`)"})
    second = first.model_copy(update={"http": first.http.model_copy(update={"routers": routers})})
    two = build_snapshot(2, [ProviderUpdate("file", second, {})], EP, cache=cache)
    assert two.config.http.routers["a@file"] is one.config.http.routers["a@file"]
    assert two.config.http.services["svc@file"] is one.config.http.services["svc@file"]
    assert two.status("http", "routers", "b@file") == ObjectStatus(
        "disabled", (rule_error("Host(`b"),), "file"
    )
    assert two.config.http.routers["c@file"].entry_points == ["web", "websecure"]
    # Without the cache, the same answers.
    fresh = build_snapshot(2, [ProviderUpdate("file", second, {})], EP)
    assert fresh.same_content(two)


# Every access-restricting type is applied today; the rule still stands for the next one,
# so it is tested with forwardAuth taken out of what the data plane applies.
FAIL_CLOSED = Case(
    "an access-restricting middleware not applied yet disables its routers (fail closed)",
    {
        "file": http(
            routers={"r": router(middlewares=["c"]), "open": router()},
            services={"svc": LB},
            middlewares={
                "auth": {"forwardAuth": {"address": "http://127.0.0.1:9"}},
                "c": {"chain": {"middlewares": ["auth"]}},
            },
        )
    },
    {
        "http.middlewares.auth@file": disabled("file", NOT_ENFORCED.format("forwardAuth")),
        "http.middlewares.c@file": disabled(
            "file", "middleware auth@file is disabled: " + NOT_ENFORCED.format("forwardAuth")
        ),
        "http.routers.r@file": disabled(
            "file",
            "middleware c@file is disabled: middleware auth@file is disabled: "
            + NOT_ENFORCED.format("forwardAuth"),
        ),
        "http.routers.open@file": enabled("file"),
    },
)


# Every type is applied now: grpcWeb stands for one that would not be (the registry less it).
NOT_APPLIED_CASE = Case(
    "a middleware type not applied yet is skipped with a warning",
    {
        "file": http(
            routers={"r": router(middlewares=["h"])},
            services={"svc": LB},
            middlewares={"h": {"grpcWeb": {"allowOrigins": ["*"]}}},
        )
    },
    {
        "http.routers.r@file": enabled("file"),
        "http.middlewares.h@file": warning("file", NOT_APPLIED.format("grpcWeb")),
    },
)


def test_a_type_not_applied_is_skipped_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        middleware_support, "APPLIED", middleware_support.APPLIED - {("http", "grpcWeb")}
    )
    test_statuses(NOT_APPLIED_CASE)


def test_an_access_restricting_type_not_applied_disables_its_routers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        middleware_support, "APPLIED", middleware_support.APPLIED - {("http", "forwardAuth")}
    )
    test_statuses(FAIL_CLOSED)
