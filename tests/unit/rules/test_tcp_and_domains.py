"""TCP matchers (Traefik's pkg/muxer/tcp cases, written for proxynow) and ACME domains."""

from __future__ import annotations

import ipaddress

import pytest

from proxynow.rules import RuleError, SimpleConnection, compile_predicate, parse_rule, rule_domains


def conn(
    sni: str = "", alpn: tuple[str, ...] = (), ip: str | None = "10.0.0.1"
) -> SimpleConnection:
    return SimpleConnection(sni, alpn, ipaddress.ip_address(ip) if ip else None)


TCP_CASES = [
    ("HostSNI(`*`)", conn(), True),
    ("HostSNI(`*`)", conn("a.test"), True),
    ("HostSNI(`a.test`)", conn("a.test"), True),
    ("HostSNI(`A.Test`)", conn("a.test"), True),
    ("HostSNI(`a.test.`)", conn("a.test"), True),
    ("HostSNI(`a.test`)", conn("b.test"), False),
    ("HostSNI(`a.test`)", conn(""), False),
    ("HostSNI(`*.test`)", conn("a.test"), True),
    ("HostSNI(`*.test`)", conn("a.b.test"), False),
    ("HostSNI(`*.test`)", conn("test"), False),
    ("HostSNI(`bücher.de`)", conn("xn--bcher-kva.de"), True),
    ("HostSNI(`10.0.0.1`)", conn("10.0.0.1"), True),
    ("HostSNIRegexp(`^[a-z]+\\.test$`)", conn("abc.test"), True),
    ("HostSNIRegexp(`^[a-z]+\\.test$`)", conn("a1.test"), False),
    ("HostSNIRegexp(`^$`)", conn(""), True),
    # Exponential under backtracking, instant on RE2 (see tests/unit/rules/test_goregexp.py).
    ("HostSNIRegexp(`^(a+)+\\.test$`)", conn("a" * 40 + "!.test"), False),
    ("HostSNIRegexp(`^(a|aa)+$`)", conn("a" * 40 + "!"), False),
    ("ALPN(`h2`)", conn(alpn=("h2", "http/1.1")), True),
    ("ALPN(`h2`)", conn(alpn=("http/1.1",)), False),
    ("ALPN(`h2`)", conn(), False),
    ("ClientIP(`10.0.0.0/8`)", conn(ip="10.1.2.3"), True),
    ("ClientIP(`10.0.0.0/8`)", conn(ip="192.168.1.1"), False),
    ("ClientIP(`::1`)", conn(ip="::1"), True),
    ("HostSNI(`a.test`) && ALPN(`h2`)", conn("a.test", ("h2",)), True),
    ("HostSNI(`a.test`) && !ALPN(`h2`)", conn("a.test", ("h2",)), False),
    ("HostSNI(`a.test`) || HostSNI(`b.test`)", conn("b.test"), True),
]


@pytest.mark.parametrize(("rule", "connection", "expected"), TCP_CASES)
def test_tcp_matcher(rule: str, connection: SimpleConnection, expected: bool) -> None:
    assert compile_predicate(parse_rule(rule, kind="tcp"))(connection) is expected


TCP_ERRORS = [
    ("ALPN(`acme-tls/1`)", "ALPN value 'acme-tls/1' is reserved for ACME at column 6"),
    ("HostSNI(`a b`)", "invalid value 'a b' for HostSNI: not a valid hostname at column 9"),
    ("HostSNI(`a`, `b`)", "HostSNI expects 1 argument, got 2 at column 1"),
    ("HostSNIRegexp(`é`)", "invalid value 'é' for HostSNIRegexp: not ASCII at column 15"),
    ("Host(`a`)", "Host is an HTTP matcher, not allowed in TCP rules at column 1"),
    ("hostsni(`a`) && aLPN(`h2`)", "unknown matcher 'aLPN' at column 17"),
]


@pytest.mark.parametrize(("rule", "message"), TCP_ERRORS)
def test_tcp_error(rule: str, message: str) -> None:
    with pytest.raises(RuleError) as info:
        parse_rule(rule, kind="tcp")
    assert str(info.value) == message


DOMAINS = [
    ("Host(`Example.com`)", ["example.com"]),
    ("Host(`a.com`) && Path(`/x`)", ["a.com"]),
    ("Host(`a.com`) || Host(`b.com`)", ["a.com", "b.com"]),
    ("!Host(`a.com`)", ["a.com"]),
    ("Host(`a.com`) || (Host(`b.com`) && !Host(`c.com`))", ["a.com", "b.com", "c.com"]),
    ("HostRegexp(`.*\\.com`)", []),
    ("Path(`/a`)", []),
    ("Host(`a.com`) || Host(`A.com`)", ["a.com"]),
    ("Host(`*.a.com`)", ["*.a.com"]),
]


@pytest.mark.parametrize(("rule", "domains"), DOMAINS)
def test_rule_domains(rule: str, domains: list[str]) -> None:
    assert rule_domains(parse_rule(rule)) == domains


def test_tcp_domains() -> None:
    assert rule_domains(parse_rule("HostSNI(`A.test`) || ALPN(`h2`)", kind="tcp")) == ["a.test"]
