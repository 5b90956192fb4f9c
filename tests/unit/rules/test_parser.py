"""Grammar: tree shapes, operator precedence, quoting, matcher spellings, and every parse
error with its exact message and column (cases in the spirit of Traefik's
pkg/rules/parser_test.go, written for proxynow)."""

from __future__ import annotations

import pytest

from proxynow.rules import And, Matcher, Not, Or, RuleError, format_rule, parse_rule

A = Matcher("Host", ("a",))
B = Matcher("Path", ("/b",))
C = Matcher("Method", ("GET",))

TREES = [
    ("Host(`a`)", A),
    ('Host("a")', A),
    ("host(`a`)", A),
    ("HOST(`a`)", A),
    ("Host(`a`) && Path(`/b`)", And(A, B)),
    ("Host(`a`) || Path(`/b`)", Or(A, B)),
    ("!Host(`a`)", Not(A)),
    ("!!Host(`a`)", Not(Not(A))),
    ("!(Host(`a`) || Path(`/b`))", Not(Or(A, B))),
    ("Host(`a`) || Path(`/b`) && Method(`GET`)", Or(A, And(B, C))),
    ("Host(`a`) && Path(`/b`) || Method(`GET`)", Or(And(A, B), C)),
    ("(Host(`a`) || Path(`/b`)) && Method(`GET`)", And(Or(A, B), C)),
    ("Host(`a`) && Path(`/b`) && Method(`GET`)", And(And(A, B), C)),
    ("Host(`a`) || Path(`/b`) || Method(`GET`)", Or(Or(A, B), C)),
    ("((Host(`a`)))", A),
    ("  Host( `a` )\n&&\tPath(`/b`)  ", And(A, B)),
    ("!Host(`a`) && Path(`/b`)", And(Not(A), B)),
    ("Host(`a`)&&Path(`/b`)", And(A, B)),
    ('Path("/b") || Host("a")', Or(B, A)),
    ("Header(`X-A`, `v`)", Matcher("Header", ("X-A", "v"))),
    ("Query(`k`)", Matcher("Query", ("k",))),
    ("Query(`k`, `v`)", Matcher("Query", ("k", "v"))),
    ("Hostregexp(`a`)", Matcher("HostRegexp", ("a",))),
    ("HOSTREGEXP(`a`)", Matcher("HostRegexp", ("a",))),
    ("clientip(`::1`)", Matcher("ClientIP", ("::1",))),
    ("Clientip(`::1`)", Matcher("ClientIP", ("::1",))),
    ("PathPrefix(`/x`)", Matcher("PathPrefix", ("/x",))),
    ("pathprefix(`/x`)", Matcher("PathPrefix", ("/x",))),
]


@pytest.mark.parametrize(("rule", "tree"), TREES, ids=[t[0] for t in TREES])
def test_tree(rule: str, tree: object) -> None:
    assert parse_rule(rule) == tree


STRINGS = [
    ('Path("/a\\"b")', '/a"b'),
    ('Path("/a\\\\b")', "/a\\b"),
    ('Path("/\\x41")', "/A"),
    ('Path("/\\u00e9")', "/é"),
    ('Path("/\\101")', "/A"),
    ('Path("/a\\tb")', "/a\tb"),
    ("Path(`/a\\tb`)", "/a\\tb"),
    ('Path(`/a"b`)', '/a"b'),
    ("Path(`/é`)", "/é"),
]


@pytest.mark.parametrize(("rule", "value"), STRINGS, ids=[s[0] for s in STRINGS])
def test_string_literals(rule: str, value: str) -> None:
    node = parse_rule(rule)
    assert isinstance(node, Matcher)
    assert node.args == (value,)


ERRORS = [
    ("", "empty rule at column 1"),
    ("   ", "empty rule at column 1"),
    ("Host(`a`) && (Path(`/x`)))", "unexpected ')' at column 26"),
    ("(Host(`a`)", "unbalanced parentheses: expected ')' at column 11"),
    ("Host(`a`) &&", "unexpected end of rule at column 13"),
    ("Host(`a`) ||", "unexpected end of rule at column 13"),
    ("&& Host(`a`)", "unexpected '&&' at column 1"),
    ("Host(`a`) Path(`/b`)", "unexpected 'Path' at column 11"),
    ("Host(`a`) & Path(`/b`)", "unexpected '&' (did you mean '&&'?) at column 11"),
    ("Host(`a`) | Path(`/b`)", "unexpected '|' (did you mean '||'?) at column 11"),
    ("Host('a')", "single quotes are not allowed, use backticks or double quotes at column 6"),
    ("Host(`a)", "unterminated string at column 6"),
    ('Host("a)', "unterminated string at column 6"),
    ('Path("/\\q")', "invalid escape sequence '\\q' at column 8"),
    ("Host", "expected '(' after Host at column 5"),
    ("Host(`a` `b`)", "unexpected string, expected ',' or ')' at column 10"),
    ("Host(a)", "unexpected 'a', expected a string in backticks or double quotes at column 6"),
    ("Host(`a`,)", "unexpected ')', expected a string in backticks or double quotes at column 10"),
    ("Host()", "Host expects 1 argument, got 0 at column 1"),
    ("Host(`a`, `b`)", "Host expects 1 argument, got 2 at column 1"),
    ("Header(`X`)", "Header expects 2 arguments, got 1 at column 1"),
    ("Query(`a`, `b`, `c`)", "Query expects 1 or 2 arguments, got 3 at column 1"),
    ("Path(`/a`) && Host(``)", "empty argument for Host at column 20"),
    ('Header(`X`, "")', "empty argument for Header at column 13"),
    ("Foo(`a`)", "unknown matcher 'Foo' at column 1"),
    ("hostRegexp(`a`)", "unknown matcher 'hostRegexp' at column 1"),
    ("Headers(`a`, `b`)", "unknown matcher 'Headers' (v2 syntax; use Header) at column 1"),
    ("HostHeader(`a`)", "unknown matcher 'HostHeader' (v2 syntax; use Host) at column 1"),
    ("HostSNI(`a`)", "HostSNI is a TCP matcher, not allowed in HTTP rules at column 1"),
    (
        "Host(`bücher.de`)",
        "invalid value 'bücher.de' for Host: non-ASCII characters are not allowed "
        "(use punycode) at column 6",
    ),
    ("Path(`a`)", "Path value 'a' does not start with '/' at column 6"),
    ("PathPrefix(`api`)", "PathPrefix value 'api' does not start with '/' at column 12"),
    ("ClientIP(`1.2.3`)", "invalid IP or CIDR '1.2.3' for ClientIP at column 10"),
    ("ClientIP(`10.0.0.0/33`)", "invalid IP or CIDR '10.0.0.0/33' for ClientIP at column 10"),
    ("ClientIP(`fe80::1%eth0`)", "invalid IP or CIDR 'fe80::1%eth0' for ClientIP at column 10"),
    (
        "HostRegexp(`(?=a)`)",
        "invalid regexp '(?=a)' for HostRegexp: lookaround assertions are not supported (RE2) "
        "at column 12",
    ),
    (
        "PathRegexp(`(a)\\1`)",
        "invalid regexp '(a)\\\\1' for PathRegexp: backreferences are not supported (RE2) "
        "at column 12",
    ),
    ("PathRegexp(`(`)", "invalid regexp '(' for PathRegexp: missing closing ): `(` at column 12"),
    (
        "HeaderRegexp(`X`, `[a`)",
        "invalid regexp '[a' for HeaderRegexp: missing closing ]: `[a` at column 19",
    ),
    ("Host(`a`) @", "unexpected character '@' at column 11"),
]


@pytest.mark.parametrize(("rule", "message"), ERRORS, ids=[e[0] or "<empty>" for e in ERRORS])
def test_error(rule: str, message: str) -> None:
    with pytest.raises(RuleError) as info:
        parse_rule(rule)
    assert str(info.value) == message
    assert info.value.column == int(message.rsplit(" ", 1)[1])


def test_tcp_matchers_only_in_tcp_rules() -> None:
    with pytest.raises(RuleError, match="Path is an HTTP matcher"):
        parse_rule("Path(`/a`)", kind="tcp")
    assert parse_rule("ClientIP(`::1`)", kind="tcp") == Matcher("ClientIP", ("::1",))


@pytest.mark.parametrize(("rule", "_tree"), TREES, ids=[t[0] for t in TREES])
def test_format_round_trip(rule: str, _tree: object) -> None:
    node = parse_rule(rule)
    assert parse_rule(format_rule(node)) == node
