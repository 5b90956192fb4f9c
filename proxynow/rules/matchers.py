"""The matchers of the rule language: names, arity, argument validation and predicates.

Each matcher is described once in ``_SPECS`` (arity and validator); ``compile_matcher``
turns a validated ``Matcher`` node into a closure over a ``RequestView``/``TCPView`` with
everything precomputed (lowercased hosts, compiled regexps, parsed networks), so that a
match does no parsing and no allocation. Semantics follow Traefik v3.7's
``pkg/muxer/http/matcher.go`` and ``pkg/muxer/tcp/matcher.go``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from proxynow.rules.ast import Matcher
from proxynow.rules.errors import RuleError
from proxynow.rules.goregexp import RegexpError, compile_regexp

Predicate = Callable[[Any], bool]
Validator = Callable[[str, tuple[str, ...], tuple[int, ...]], None]

_ACME_TLS_ALPN = "acme-tls/1"
# Traefik's HostSNI check: [[:word:]] plus '.', '-' and ':' (IPs are allowed as SNI values).
_SNI_VALUE = re.compile(r"[0-9A-Za-z_.:\-]+", re.ASCII)


def _always(_: object) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class _Spec:
    kind: str
    arities: tuple[int, ...]


_SPECS: dict[str, _Spec] = {
    "Host": _Spec("http", (1,)),
    "HostRegexp": _Spec("http", (1,)),
    "Path": _Spec("http", (1,)),
    "PathPrefix": _Spec("http", (1,)),
    "PathRegexp": _Spec("http", (1,)),
    "Method": _Spec("http", (1,)),
    "Header": _Spec("http", (2,)),
    "HeaderRegexp": _Spec("http", (2,)),
    "Query": _Spec("http", (1, 2)),
    "QueryRegexp": _Spec("http", (1, 2)),
    "ClientIP": _Spec("both", (1,)),
    "HostSNI": _Spec("tcp", (1,)),
    "HostSNIRegexp": _Spec("tcp", (1,)),
    "ALPN": _Spec("tcp", (1,)),
}
_V2_NAMES = {"Headers": "Header", "HeadersRegexp": "HeaderRegexp", "HostHeader": "Host"}


def _spellings(name: str) -> set[str]:
    # Traefik registers each matcher as written, lowercase, UPPERCASE and Title-case of the
    # lowercase name (pkg/rules/parser.go), so "Hostregexp" works but "hostRegexp" does not.
    lower = name.lower()
    return {name, lower, name.upper(), lower[:1].upper() + lower[1:]}


_BY_SPELLING: dict[str, str] = {s: name for name in _SPECS for s in _spellings(name)}


def resolve_name(written: str, kind: str, column: int) -> str:
    """Canonical name of the matcher spelled ``written`` for a rule of ``kind``."""
    name = _BY_SPELLING.get(written)
    if name is None:
        hint = f" (v2 syntax; use {_V2_NAMES[written]})" if written in _V2_NAMES else ""
        raise RuleError(f"unknown matcher '{written}'{hint}", column)
    if _SPECS[name].kind not in ("both", kind):
        other = "TCP" if kind == "http" else "HTTP"
        article = "an" if other == "HTTP" else "a"
        raise RuleError(
            f"{name} is {article} {other} matcher, not allowed in {kind.upper()} rules", column
        )
    return name


def validate_matcher(
    name: str, args: tuple[str, ...], column: int, arg_columns: tuple[int, ...]
) -> None:
    """Check arity, emptiness and the per-matcher argument rules; raise ``RuleError``."""
    arities = _SPECS[name].arities
    if len(args) not in arities:
        expected = " or ".join(str(a) for a in arities)
        plural = "" if arities == (1,) else "s"
        raise RuleError(f"{name} expects {expected} argument{plural}, got {len(args)}", column)
    for value, arg_column in zip(args, arg_columns, strict=True):
        if not value:
            raise RuleError(f"empty argument for {name}", arg_column)
    _VALIDATORS.get(name, _no_check)(name, args, arg_columns)


def _no_check(name: str, args: tuple[str, ...], columns: tuple[int, ...]) -> None:
    return None


def _check_ascii_host(name: str, args: tuple[str, ...], columns: tuple[int, ...]) -> None:
    if not args[0].isascii():
        raise RuleError(
            f"invalid value {args[0]!r} for {name}: non-ASCII characters are not allowed "
            "(use punycode)",
            columns[0],
        )
    if name == "HostRegexp":
        _check_regexp(name, args[0], columns[0])


def _check_path(name: str, args: tuple[str, ...], columns: tuple[int, ...]) -> None:
    if not args[0].startswith("/"):
        raise RuleError(f"{name} value {args[0]!r} does not start with '/'", columns[0])


def _check_last_regexp(name: str, args: tuple[str, ...], columns: tuple[int, ...]) -> None:
    if name != "QueryRegexp" or len(args) == 2:
        _check_regexp(name, args[-1], columns[-1])


def _check_regexp(name: str, pattern: str, column: int) -> None:
    try:
        compile_regexp(pattern)
    except RegexpError as err:
        raise RuleError(f"invalid regexp {pattern!r} for {name}: {err}", column) from None


def _check_client_ip(name: str, args: tuple[str, ...], columns: tuple[int, ...]) -> None:
    if _parse_network(args[0]) is None:
        raise RuleError(f"invalid IP or CIDR {args[0]!r} for ClientIP", columns[0])


def _check_sni(name: str, args: tuple[str, ...], columns: tuple[int, ...]) -> None:
    if sni_key(args[0]) is None:
        raise RuleError(f"invalid value {args[0]!r} for HostSNI: not a valid hostname", columns[0])


def _check_sni_regexp(name: str, args: tuple[str, ...], columns: tuple[int, ...]) -> None:
    if not args[0].isascii():
        raise RuleError(f"invalid value {args[0]!r} for HostSNIRegexp: not ASCII", columns[0])
    _check_regexp(name, args[0], columns[0])


def _check_alpn(name: str, args: tuple[str, ...], columns: tuple[int, ...]) -> None:
    if args[0] == _ACME_TLS_ALPN:
        raise RuleError(f"ALPN value {_ACME_TLS_ALPN!r} is reserved for ACME", columns[0])


_VALIDATORS: dict[str, Validator] = {
    "Host": _check_ascii_host,
    "HostRegexp": _check_ascii_host,
    "Path": _check_path,
    "PathPrefix": _check_path,
    "PathRegexp": _check_last_regexp,
    "HeaderRegexp": _check_last_regexp,
    "QueryRegexp": _check_last_regexp,
    "ClientIP": _check_client_ip,
    "HostSNI": _check_sni,
    "HostSNIRegexp": _check_sni_regexp,
    "ALPN": _check_alpn,
}


def _parse_network(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    # Go's net.ParseCIDR accepts host bits ("10.0.0.1/8"); a zone ("fe80::1%eth0") is refused.
    if "%" in value:
        return None
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None
    mapped = network.network_address
    if isinstance(mapped, ipaddress.IPv6Address) and mapped.ipv4_mapped and network.prefixlen >= 96:
        # Go keeps IPv4 addresses in IPv4-mapped form: ::ffff:10.0.0.1 *is* 10.0.0.1.
        return ipaddress.IPv4Network(f"{mapped.ipv4_mapped}/{network.prefixlen - 96}")
    return network


def sni_key(value: str) -> str | None:
    """HostSNI argument → the lowercase name to compare, or None if invalid."""
    if value == "*":
        return value
    body = value[2:] if value.startswith("*.") else value
    if not _SNI_VALUE.fullmatch(body):
        try:
            body = body.encode("idna").decode("ascii")
        except UnicodeError:
            return None
        if not _SNI_VALUE.fullmatch(body):
            return None
    prefix = "*." if value.startswith("*.") else ""
    return (prefix + body).lower()


def host_key(value: str) -> str:
    """Host()/HostSNI() argument → the key compared with a canonical host."""
    value = value.lower()
    return value[:-1] if value.endswith(".") and value != "." else value


def _host_predicate(value: str, attribute: str) -> Predicate:
    key = host_key(value)
    if key == "*":
        return _always
    if key.startswith("*."):
        suffix = key[1:]
        # Single-label wildcard (v3.7): exactly one label (no dot) before the suffix.
        return lambda r: _wildcard_match(getattr(r, attribute), suffix)
    if attribute == "host":
        return lambda r: r.host == key
    return lambda r: r.sni == key


def _wildcard_match(host: str, suffix: str) -> bool:
    dot = host.find(".")
    return dot >= 0 and host[dot:] == suffix


def _regexp_predicate(pattern: str, attribute: str) -> Predicate:
    search = compile_regexp(pattern).search
    if attribute == "host" and search("") is not None:
        # Traefik also tries the regexp on the CNAME-flattened host, which is "" when
        # hostResolver is off: a regexp that matches "" matches every request there.
        return _always
    if attribute == "host":
        return lambda r: search(r.host) is not None
    if attribute == "sni":
        return lambda r: search(r.sni) is not None
    return lambda r: search(r.path) is not None


def _header_predicate(name: str, value: str) -> Predicate:
    lower = name.lower()
    return lambda r: value in r.header_values(lower)


def _header_regexp_predicate(name: str, pattern: str) -> Predicate:
    lower, search = name.lower(), compile_regexp(pattern).search
    return lambda r: any(search(v) is not None for v in r.header_values(lower))


def _query_predicate(args: tuple[str, ...]) -> Predicate:
    key, value = args[0], args[1] if len(args) == 2 else ""

    def match(r: Any) -> bool:
        values = r.query_values(key)
        return values is not None and value in values

    return match


def _query_regexp_predicate(args: tuple[str, ...]) -> Predicate:
    if len(args) == 1:
        return _query_predicate(args)
    key, search = args[0], compile_regexp(args[1]).search

    def match(r: Any) -> bool:
        values = r.query_values(key)
        return values is not None and any(search(v) is not None for v in values)

    return match


def _client_ip_predicate(value: str) -> Predicate:
    network = _parse_network(value)
    assert network is not None  # validated by the parser
    if network.prefixlen == network.max_prefixlen:
        address = network.network_address
        return lambda r: r.client_ip == address
    return lambda r: r.client_ip is not None and r.client_ip in network


def _path_predicate(path: str) -> Predicate:
    return lambda r: r.path == path


def _prefix_predicate(prefix: str) -> Predicate:
    return lambda r: r.path.startswith(prefix)


def _method_predicate(method: str) -> Predicate:
    upper = method.upper()
    return lambda r: r.method == upper


def _sni_predicate(value: str) -> Predicate:
    key = sni_key(value)
    assert key is not None  # validated by the parser
    return _host_predicate(key, "sni")


def _alpn_predicate(protocol: str) -> Predicate:
    return lambda r: protocol in r.alpn


def compile_matcher(node: Matcher) -> Predicate:
    """The predicate of one validated matcher."""
    args, name = node.args, node.name
    builders: dict[str, Callable[[], Predicate]] = {
        "Host": lambda: _host_predicate(args[0], "host"),
        "HostRegexp": lambda: _regexp_predicate(args[0], "host"),
        "Path": lambda: _path_predicate(args[0]),
        "PathPrefix": lambda: _prefix_predicate(args[0]),
        "PathRegexp": lambda: _regexp_predicate(args[0], "path"),
        "Method": lambda: _method_predicate(args[0]),
        "Header": lambda: _header_predicate(args[0], args[1]),
        "HeaderRegexp": lambda: _header_regexp_predicate(args[0], args[1]),
        "Query": lambda: _query_predicate(args),
        "QueryRegexp": lambda: _query_regexp_predicate(args),
        "ClientIP": lambda: _client_ip_predicate(args[0]),
        "HostSNI": lambda: _sni_predicate(args[0]),
        "HostSNIRegexp": lambda: _regexp_predicate(args[0], "sni"),
        "ALPN": lambda: _alpn_predicate(args[0]),
    }
    return builders[name]()
