"""What Traefik accepts in a router but only logs at run time, if at all: `check`'s hints.

Each is served as written, by Traefik and by proxynow alike, and does not do what its
author meant, so `proxynow check` reports it as a warning that says what to write:

- a router naming a certificate resolver the static configuration does not define
  (Traefik logs "Router uses a nonexistent certificate resolver" and serves the default
  certificate);
- a `Host()` (`HostSNI()`) argument that is a URL or carries a path or a port: the
  request host never equals it, so the router never matches;
- a v2 placeholder `{name:re}` in a v3 rule: in `Host`/`Path`/`PathPrefix` it is literal
  text, in `HostRegexp`/`PathRegexp` regexp syntax, and matches nothing a v2 user meant.

Pure functions of one router (and the resolver names); proxynow/control/check.py positions
the results.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from proxynow.rules.ast import And, Matcher, Node, Not, Or
from proxynow.rules.errors import RuleError
from proxynow.rules.parser import parse_rule

__all__ = ["cert_resolver_hint", "rule_hints"]

# `{name}` or `{name:regexp}` as v2 wrote them; the regexp may hold one level of braces
# (`{id:[0-9]{3}}`). A name starts with a letter, so `{3}` stays a repetition.
_PLACEHOLDER = re.compile(r"\{([A-Za-z_]\w*)(?::((?:[^{}]|\{[^{}]*\})*))?\}")
_HOST_MATCHERS = frozenset({"Host", "HostSNI"})
_PLACEHOLDER_MATCHERS = frozenset({"Host", "HostRegexp", "Path", "PathPrefix", "PathRegexp"})


def cert_resolver_hint(resolver: str, known: Mapping[str, object]) -> str | None:
    """Why `tls.certResolver: resolver` gets no certificate, or None when it exists."""
    if not resolver or resolver in known:
        return None
    names = ", ".join(sorted(known)) or "none is defined"
    return (
        f"certificate resolver {resolver!r} is not defined in the static configuration "
        f"(certificatesResolvers: {names}); Traefik only logs this at run time and serves "
        "the default certificate: define it or name an existing one"
    )


def rule_hints(rule: str, kind: str = "http") -> list[str]:
    """The hints for one rule text (none for a rule that does not parse: that is an error
    reported on its own)."""
    if "://" not in rule and "/" not in rule and ":" not in rule and "{" not in rule:
        return []  # the usual `Host(`a.com`)`: nothing to look at, no second parse
    try:
        tree = parse_rule(rule, "tcp" if kind == "tcp" else "http")
    except RuleError:
        return []
    hints: list[str] = []
    for matcher in _matchers(tree):
        hints.extend(_matcher_hints(matcher))
    return hints


def _matchers(node: Node) -> Iterator[Matcher]:
    if isinstance(node, Matcher):
        yield node
    elif isinstance(node, Not):
        yield from _matchers(node.operand)
    elif isinstance(node, And | Or):
        yield from _matchers(node.left)
        yield from _matchers(node.right)


def _matcher_hints(matcher: Matcher) -> list[str]:
    hints = []
    for value in matcher.args:
        if matcher.name in _HOST_MATCHERS:
            hint = _host_hint(matcher.name, value)
            if hint:
                hints.append(hint)
        if matcher.name in _PLACEHOLDER_MATCHERS and _PLACEHOLDER.search(value):
            hints.append(_placeholder_hint(matcher.name, value))
    return hints


def _host_hint(name: str, value: str) -> str | None:
    """`Host(`https://a.com/x`)`: the host is compared alone, never with scheme or path."""
    _, sep, rest = value.partition("://")
    host_part = rest if sep else value
    host, slash, path = host_part.partition("/")
    # `a.com:8080` has a port; `::1` is an IPv6 address, not a host and a port.
    port = re.fullmatch(r"(.+):(\d+)", host) if host.count(":") == 1 else None
    if not sep and not slash and port is None:
        return None
    bare = port.group(1) if port else host
    fix = f"{name}(`{bare}`)"
    if slash and name == "Host":
        fix += f" && PathPrefix(`/{path}`)"
    what = "a URL" if sep else ("a path" if slash else "a port")
    return (
        f"{name}(`{value}`) holds {what}, and the request host never does, so the router "
        f"never matches: write {fix}"
    )


def _placeholder_hint(name: str, value: str) -> str:
    """A v2 placeholder, and the v3 regexp that means what it meant."""
    host = name.startswith("Host")
    # v2 quoted the text around a placeholder (HostRegexp too); only a PathRegexp, which
    # v2 did not have, is regexp text already.
    regexp = name == "PathRegexp"
    parts: list[str] = []
    position = 0
    for match in _PLACEHOLDER.finditer(value):
        literal = value[position : match.start()]
        parts.append(literal if regexp else re.escape(literal))
        parts.append(match.group(2) or ("[^.]+" if host else "[^/]+"))
        position = match.end()
    tail = value[position:]
    parts.append(tail if regexp else re.escape(tail))
    body = "".join(parts)
    target = "HostRegexp" if host else "PathRegexp"
    anchored = f"^{body}$" if name in ("Host", "HostRegexp", "Path", "PathRegexp") else f"^{body}"
    return (
        f"{name}(`{value}`) uses a v2 placeholder {{name:regexp}}, which v3 reads as "
        f"{'regexp' if name.endswith('Regexp') else 'literal'} text: write "
        f"{target}(`{anchored}`)"
    )
