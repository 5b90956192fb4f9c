"""The rule language: Traefik v3 router rules parsed, validated and compiled.

Public interface (see docs/architecture.md, "Rules"):

- ``parse_rule(text, kind)`` turns a rule into an AST or raises ``RuleError``;
- ``compile_table(routes, kind)`` builds the decision structure that finds, for a request,
  the first route in priority order whose rule matches;
- ``RequestView`` / ``TCPView`` describe what a rule reads, ``canonical_host`` and
  ``routing_path`` produce the host and path the data plane hands to the matchers;
- ``rule_domains(node)`` lists the Host()/HostSNI() values of a rule (for ACME).
"""

from proxynow.rules.ast import And, Matcher, Node, Not, Or, format_rule
from proxynow.rules.compiler import (
    PROVIDER_PRECEDENCE,
    Route,
    RouteTable,
    compile_predicate,
    compile_table,
    provider_rank,
)
from proxynow.rules.domains import rule_domains
from proxynow.rules.errors import RuleError
from proxynow.rules.parser import RuleKind, parse_rule
from proxynow.rules.request import (
    RequestView,
    SimpleConnection,
    SimpleRequest,
    TCPView,
    canonical_host,
    parse_query,
    routing_path,
)

__all__ = [
    "PROVIDER_PRECEDENCE",
    "And",
    "Matcher",
    "Node",
    "Not",
    "Or",
    "RequestView",
    "Route",
    "RouteTable",
    "RuleError",
    "RuleKind",
    "SimpleConnection",
    "SimpleRequest",
    "TCPView",
    "canonical_host",
    "compile_predicate",
    "compile_table",
    "format_rule",
    "parse_query",
    "parse_rule",
    "provider_rank",
    "routing_path",
    "rule_domains",
]
