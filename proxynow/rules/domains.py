"""Domains named by a rule, for certificate resolvers (ACME) and TLS default domains.

Traefik collects the value of every ``Host()`` matcher in the tree, lowercased, wherever it
sits: under ``||`` and, in v3.7, even under ``!`` (``ParseDomains`` walks the whole tree).
proxynow keeps that behaviour so that the certificates it requests are the ones Traefik
would request; TCP rules contribute their ``HostSNI()`` values the same way.
"""

from __future__ import annotations

from proxynow.rules.ast import Node, iter_matchers

_DOMAIN_MATCHERS = frozenset({"Host", "HostSNI"})


def rule_domains(node: Node) -> list[str]:
    """Lowercased Host()/HostSNI() values of ``node``, in rule order, without duplicates."""
    seen: dict[str, None] = {}
    for matcher in iter_matchers(node):
        if matcher.name in _DOMAIN_MATCHERS:
            seen.setdefault(matcher.args[0].lower(), None)
    return list(seen)
