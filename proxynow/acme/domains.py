"""Which certificates each resolver must hold: domain sets from a snapshot (pure).

Traefik's rules: a router whose `tls.certResolver` names an ACME resolver asks for one
certificate per `tls.domains` entry (main + sans) when it has any, else for one
certificate covering every `Host()` of its rule. Names are lowercased and deduplicated
(`sanitizeDomains`); `*.*.example.com` and wildcards without DNS-01 are refused (Let's
Encrypt only validates wildcards by DNS); a set already covered by another set of the
same resolver is dropped (`deleteUnnecessaryDomains`), so one wildcard or one wider set
means one order, not several. Everything here is data in, data out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from proxynow.config.dynamic import DynamicConfig, RouterTLS, TCPRouterTLS
from proxynow.rules import RuleError, parse_rule, rule_domains

__all__ = ["DomainSet", "covers", "name_matches", "sanitize", "wanted_domains"]


@dataclass(frozen=True, slots=True)
class DomainSet:
    """An ordered set of names for one certificate: `main` first, then `sans`."""

    names: tuple[str, ...]

    @property
    def main(self) -> str:
        return self.names[0]

    @property
    def sans(self) -> tuple[str, ...]:
        return self.names[1:]

    @property
    def key(self) -> frozenset[str]:
        return frozenset(self.names)

    def __str__(self) -> str:
        return ",".join(self.names)


def name_matches(pattern: str, name: str) -> bool:
    """`pattern` (a name or `*.suffix`, one label deep) covers `name`."""
    if pattern == name:
        return True
    if pattern.startswith("*."):
        head, _, tail = name.partition(".")
        return bool(head) and head != "*" and tail == pattern[2:]
    return False


def covers(names: Iterable[str], wanted: Iterable[str]) -> bool:
    """Every name in `wanted` is covered by one of `names`."""
    have = tuple(names)
    return all(any(name_matches(p, w) for p in have) for w in wanted)


def sanitize(names: Sequence[str], *, dns_challenge: bool) -> tuple[DomainSet | None, str]:
    """Lowercased, deduplicated names, or (None, why) when the set cannot be ordered."""
    seen: dict[str, None] = {}
    for raw in names:
        name = raw.strip().lower().rstrip(".")
        if name:
            seen.setdefault(name, None)
    if not seen:
        return None, "no domain"
    for name in seen:
        if name.startswith("*.*.") or "*" in name[1:]:
            return None, f"unsupported wildcard domain {name!r}"
        if name.startswith("*") and not dns_challenge:
            return None, f"wildcard domain {name!r} needs the DNS-01 challenge"
    return DomainSet(tuple(seen)), ""


def delete_unnecessary(sets: Sequence[DomainSet]) -> list[DomainSet]:
    """Drop every set that another (different or earlier identical) set already covers."""
    kept: list[DomainSet] = []
    for i, candidate in enumerate(sets):
        redundant = False
        for j, other in enumerate(sets):
            if j == i or not covers(other.names, candidate.names):
                continue
            # Strictly covered, or both cover each other and the other one came first.
            if not covers(candidate.names, other.names) or j < i:
                redundant = True
                break
        if not redundant:
            kept.append(candidate)
    return kept


def _router_names(tls: RouterTLS | TCPRouterTLS, rule: str, kind: str) -> list[list[str]]:
    if tls.domains:
        return [[d.main, *d.sans] for d in tls.domains if d.main or d.sans]
    try:
        names = rule_domains(parse_rule(rule, kind))  # type: ignore[arg-type]
    except RuleError:
        return []
    # HostSNI(`*`) matches every name: it asks for no certificate.
    names = [name for name in names if name != "*"]
    return [names] if names else []


def wanted_domains(
    config: DynamicConfig, resolvers: Mapping[str, bool]
) -> tuple[dict[str, list[DomainSet]], list[str]]:
    """Domain sets per resolver, and the problems found (one message each).

    `resolvers` maps each ACME resolver name to whether it has a DNS-01 challenge.
    """
    found: dict[str, list[DomainSet]] = {name: [] for name in resolvers}
    problems: list[str] = []
    routers: list[tuple[str, RouterTLS | TCPRouterTLS, str, str]] = []
    for name, router in sorted(config.http.routers.items()):
        if router.tls is not None and router.tls.cert_resolver:
            routers.append((f"http router {name}", router.tls, router.rule, "http"))
    for name, tcp in sorted(config.tcp.routers.items()):
        if tcp.tls is not None and tcp.tls.cert_resolver:
            routers.append((f"tcp router {name}", tcp.tls, tcp.rule, "tcp"))
    _default_generated(config, resolvers, found, problems)
    for label, tls, rule, kind in routers:
        resolver = tls.cert_resolver
        if resolver not in resolvers:
            problems.append(f"{label}: unknown certificate resolver {resolver!r}")
            continue
        for names in _router_names(tls, rule, kind):
            domain_set, why = sanitize(names, dns_challenge=resolvers[resolver])
            if domain_set is None:
                problems.append(f"{label}: {why}")
            elif domain_set not in found[resolver]:
                found[resolver].append(domain_set)
    return {name: delete_unnecessary(sets) for name, sets in found.items()}, problems


def _default_generated(
    config: DynamicConfig,
    resolvers: Mapping[str, bool],
    found: dict[str, list[DomainSet]],
    problems: list[str],
) -> None:
    """`tls.stores.default.defaultGeneratedCert`: the default certificate from a resolver."""
    store = config.tls.stores.get("default")
    generated = store.default_generated_cert if store is not None else None
    if generated is None:
        return
    label = "tls.stores.default.defaultGeneratedCert"
    if generated.resolver not in resolvers:
        problems.append(f"{label}: unknown certificate resolver {generated.resolver!r}")
        return
    if generated.domain is None or not generated.domain.main:
        problems.append(f"{label}: domain.main is required")
        return
    names = [generated.domain.main, *generated.domain.sans]
    domain_set, why = sanitize(names, dns_challenge=resolvers[generated.resolver])
    if domain_set is None:
        problems.append(f"{label}: {why}")
    else:
        found[generated.resolver].append(domain_set)
