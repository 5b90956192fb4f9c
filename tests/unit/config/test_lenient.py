"""Lenient decoding, deprecated aliases, static options not modelled yet, check's hints.

Every lenient case is what Traefik 3.7's file provider made of the same YAML (read back
from its /api/rawdata; tests/e2e/differential/test_corpus.py does that for the corpus files),
and every strict case is one Traefik refuses too.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from proxynow.config.compat import UNSUPPORTED
from proxynow.config.dynamic import DynamicConfig
from proxynow.config.errors import ConfigError, ConfigIssue
from proxynow.config.hints import cert_resolver_hint, rule_hints
from proxynow.config.loader import DynamicFileLoader, load_static, validate_dynamic
from proxynow.config.objects import validate_dynamic_objects
from proxynow.control.check import check_dynamic

LB = {"loadBalancer": {"servers": [{"url": "http://127.0.0.1:1"}]}}


def _router(**fields: Any) -> dict[str, Any]:
    return {"http": {"routers": {"r": {"rule": "Host(`a`)", "service": "s", **fields}}}}


def _middleware(kind: str, options: Any) -> dict[str, Any]:
    return {"http": {"middlewares": {"m": {kind: options}}}}


def _options(config: DynamicConfig) -> Any:
    return config.http.middlewares["m"].options


# (id, raw, what to read from the config, the value Traefik decoded)
LENIENT: list[tuple[str, dict[str, Any], Any, Any]] = [
    (
        "a string for a list of entrypoints",
        _router(entryPoints="web"),
        lambda c: c.http.routers["r"].entry_points,
        ["web"],
    ),
    (
        "a string with commas is split and trimmed",
        _router(entryPoints="web, websecure"),
        lambda c: c.http.routers["r"].entry_points,
        ["web", "websecure"],
    ),
    (
        "middlewares as one string",
        _router(middlewares="a@file,b"),
        lambda c: c.http.routers["r"].middlewares,
        ["a@file", "b"],
    ),
    (
        "authResponseHeaders split on commas",
        _middleware("forwardAuth", {"address": "http://a", "authResponseHeaders": "X-A,X-B"}),
        lambda c: _options(c).auth_response_headers,
        ["X-A", "X-B"],
    ),
    (
        "a regex string is a list of one",
        _middleware("stripPrefixRegex", {"regex": "^/x"}),
        lambda c: _options(c).regex,
        ["^/x"],
    ),
    (
        "a list item is never split",
        _middleware("ipAllowList", {"sourceRange": ["10.0.0.0/8,192.168.0.0/16"]}),
        lambda c: _options(c).source_range,
        ["10.0.0.0/8,192.168.0.0/16"],
    ),
    (
        "an empty string is an empty list",
        _middleware("stripPrefix", {"prefixes": ""}),
        lambda c: _options(c).prefixes,
        [],
    ),
    (
        "a number for a list of strings",
        _middleware("errors", {"status": 500, "service": "s"}),
        lambda c: _options(c).status,
        ["500"],
    ),
    (
        "a number for a string",
        _middleware("headers", {"customBrowserXSSValue": 0}),
        lambda c: _options(c).custom_browser_xss_value,
        "0",
    ),
    (
        "numbers and booleans as header values",
        _middleware("headers", {"customRequestHeaders": {"X-N": 1, "X-B": True}}),
        lambda c: _options(c).custom_request_headers,
        {"X-N": "1", "X-B": "true"},
    ),
    (
        "a null header value is not set at all",
        _middleware("headers", {"customRequestHeaders": {"X-A": None, "X-B": ""}}),
        lambda c: _options(c).custom_request_headers,
        {"X-B": ""},
    ),
    (
        "strings for numbers and booleans",
        _middleware("headers", {"stsSeconds": "31536000", "frameDeny": "true"}),
        lambda c: (_options(c).sts_seconds, _options(c).frame_deny),
        (31536000, True),
    ),
    ("tls: true", _router(tls=True), lambda c: c.http.routers["r"].tls, {}),
    ('tls: "true"', _router(tls="true"), lambda c: c.http.routers["r"].tls, {}),
    ("tls: false", _router(tls=False), lambda c: c.http.routers["r"].tls, None),
    ("tls: null", _router(tls=None), lambda c: c.http.routers["r"].tls, None),
    ("middlewares: null", _router(middlewares=None), lambda c: c.http.routers["r"].middlewares, []),
    (
        "sticky: true",
        {"http": {"services": {"s": {"loadBalancer": {"servers": [], "sticky": True}}}}},
        lambda c: c.http.services["s"].load_balancer.sticky,
        {},
    ),
    ("http: null", {"http": None}, lambda c: c.http.routers, {}),
    ("a null table", {"http": {"middlewares": None}}, lambda c: c.http.middlewares, {}),
    (
        "keys at the root of a file are ignored",
        {"version": "3", "x-defaults": {"a": 1}, **_router()},
        lambda c: sorted(c.http.routers),
        ["r"],
    ),
]


def _compare(value: Any, expected: Any) -> None:
    if hasattr(value, "model_dump") and isinstance(expected, dict):
        value = value.model_dump(exclude_defaults=True)
    assert value == expected


@pytest.mark.parametrize(
    ("raw", "read", "expected"), [c[1:] for c in LENIENT], ids=[c[0] for c in LENIENT]
)
def test_values_are_decoded_as_traefik_decodes_them(raw: Any, read: Any, expected: Any) -> None:
    _compare(read(validate_dynamic(raw)), expected)
    # `check` reads the file object by object and must agree, with no error.
    found = validate_dynamic_objects(raw)
    assert [i for i in found.issues if i.severity == "error"] == []
    _compare(read(found.config), expected)


# Shapes Traefik refuses too: they stay errors, each naming the key.
STRICT: list[tuple[str, dict[str, Any], str]] = [
    ("an unknown key in a router", _router(priorty=1), "unknown key 'priorty'"),
    (
        "an unknown key in a section",
        {"http": {"routers": {}, "servics": {}}},
        "unknown key 'servics'",
    ),
    ("a list where a string is expected", _router(service=["a", "b"]), "expected a string"),
    (
        "a mapping where a list of servers is expected",
        {"http": {"services": {"s": {"loadBalancer": {"servers": {"url": "http://a"}}}}}},
        "expected a list",
    ),
    ("a word where a number is expected", _router(priority="high"), "expected an integer"),
    (
        "RoundRobin (a CRD spelling the file provider refuses)",
        {"http": {"services": {"s": {"loadBalancer": {"servers": [], "strategy": "RoundRobin"}}}}},
        "expected 'wrr'",
    ),
]


@pytest.mark.parametrize(("raw", "message"), [c[1:] for c in STRICT], ids=[c[0] for c in STRICT])
def test_real_mistakes_stay_errors(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate_dynamic(raw)
    assert any(message in issue.message for issue in caught.value.issues), caught.value
    errors = [i for i in validate_dynamic_objects(raw).issues if i.severity == "error"]
    assert any(message in issue.message for issue in errors)


# (id, raw, the path of the warning, a word of its message, what the value becomes)
DEPRECATED: list[tuple[str, dict[str, Any], str, str, Any]] = [
    (
        "ipWhiteList (HTTP)",
        _middleware("ipWhiteList", {"sourceRange": "10.0.0.0/8"}),
        "http.middlewares.m.ipWhiteList",
        "write ipAllowList",
        lambda c: (c.http.middlewares["m"].kind, _options(c).source_range),
    ),
    (
        "ipWhiteList (TCP)",
        {"tcp": {"middlewares": {"m": {"IPWhiteList": {"sourceRange": ["10.0.0.0/8"]}}}}},
        "tcp.middlewares.m.IPWhiteList",
        "write ipAllowList",
        lambda c: (c.tcp.middlewares["m"].kind, c.tcp.middlewares["m"].options.source_range),
    ),
    (
        "ruleSyntax",
        _router(ruleSyntax="v3"),
        "http.routers.r.ruleSyntax",
        "remove it",
        None,
    ),
    (
        "sslRedirect",
        _middleware("headers", {"sslRedirect": True}),
        "http.middlewares.m.headers.sslRedirect",
        "redirectScheme",
        None,
    ),
    (
        "featurePolicy",
        _middleware("headers", {"featurePolicy": "x"}),
        "http.middlewares.m.headers.featurePolicy",
        "permissionsPolicy",
        None,
    ),
    (
        "forceSlash",
        _middleware("stripPrefix", {"prefixes": ["/a"], "forceSlash": False}),
        "http.middlewares.m.stripPrefix.forceSlash",
        "remove it",
        None,
    ),
    (
        "proxyProtocol on a TCP loadBalancer",
        {"tcp": {"services": {"s": {"loadBalancer": {"servers": [], "proxyProtocol": {}}}}}},
        "tcp.services.s.loadBalancer.proxyProtocol",
        "serversTransports",
        None,
    ),
]


@pytest.mark.parametrize(
    ("raw", "path", "word", "read"), [c[1:] for c in DEPRECATED], ids=[c[0] for c in DEPRECATED]
)
def test_deprecated_keys_are_read_with_a_warning(
    raw: dict[str, Any], path: str, word: str, read: Any
) -> None:
    warnings: list[ConfigIssue] = []
    config = validate_dynamic(raw, warnings=warnings)
    assert [(w.path, w.severity) for w in warnings] == [(path, "warning")]
    assert word in warnings[0].message
    found = validate_dynamic_objects(raw)
    assert [(i.path, i.severity) for i in found.issues] == [(path, "warning")]
    if read is not None:
        assert read(config) == ("ipAllowList", ["10.0.0.0/8"])


def test_ruleSyntax_v2_is_an_error_without_the_deprecation_noise() -> None:
    found = validate_dynamic_objects(_router(ruleSyntax="v2"))
    assert [(i.severity, i.path) for i in found.issues] == [("error", "http.routers.r.ruleSyntax")]


def test_root_keys_are_warnings_with_a_suggestion() -> None:
    found = validate_dynamic_objects({"htp": {}, "version": 3, **_router()})
    assert [str(i) for i in found.issues] == [
        "warning: htp: unknown key 'htp' at the root of the file (did you mean 'http'?); "
        "ignored, as Traefik does",
        "warning: version: unknown key 'version' at the root of the file; ignored, as Traefik does",
    ]


def test_the_file_provider_logs_each_warning_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "d.yml"
    body: dict[str, Any] = {
        "version": "3",
        "http": {"middlewares": {"m": {"ipWhiteList": {"sourceRange": ["10.0.0.0/8"]}}}},
    }
    path.write_text(yaml.safe_dump(body))
    loader = DynamicFileLoader()
    with caplog.at_level(logging.WARNING, logger="proxynow.config.loader"):
        loader.load(path)
        loader.load(path)  # unchanged: nothing new to say
        body["http"]["middlewares"]["n"] = {"ipWhiteList": {"sourceRange": ["10.1.0.0/16"]}}
        path.write_text(yaml.safe_dump(body))
        loader.load(path)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3, messages
    assert sum("version" in m for m in messages) == 1
    assert sum("http.middlewares.n.ipWhiteList" in m for m in messages) == 1


# ---------------------------------------------------------------- static


def _static(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "proxynow.yml"
    path.write_text("entryPoints:\n  web:\n    address: ':80'\n" + text)
    return path


# (id, YAML after the `web` entrypoint, the path warned about, a word of the message)
STATIC_WARNINGS: list[tuple[str, str, str, str]] = [
    ("tracing", "tracing:\n  otlp:\n    http: {}\n", "tracing", "no spans"),
    (
        "datadog metrics",
        "metrics:\n  datadog: {address: '127.0.0.1:8125'}\n",
        "metrics.datadog",
        "prometheus",
    ),
    ("statsD metrics", "metrics:\n  statsD: {}\n", "metrics.statsD", "prometheus"),
    (
        "experimental",
        "experimental:\n  kubernetesgateway: true\n",
        "experimental",
        "deprecated since Traefik v3.1",
    ),
    ("hostResolver", "hostResolver: {cnameFlattening: true}\n", "hostResolver", "CNAME"),
    ("ocsp", "ocsp: {}\n", "ocsp", "OCSP"),
    ("spiffe", "spiffe: {workloadAPIAddr: 'unix:///x'}\n", "spiffe", "SPIFFE"),
    (
        "http3",
        "  h3:\n    address: ':443'\n    http3: {advertisedPort: 443}\n",
        "entryPoints.h3.http3",
        "HTTP/3",
    ),
    (
        "encodedCharacters all allowed",
        "  e:\n    address: ':81'\n    http:\n      encodedCharacters: {allowEncodedSlash: true}\n",
        "entryPoints.e.http.encodedCharacters",
        "left out",
    ),
    (
        "underscoreHeadersStrategy keep",
        "  e:\n    address: ':81'\n    http:\n      underscoreHeadersStrategy: keep\n",
        "entryPoints.e.http.underscoreHeadersStrategy",
        "left out",
    ),
    ("a provider not supported", "providers:\n  swarm: {}\n", "providers.swarm", "not served"),
    ("a root key", "version: 2\n", "version", "ignored, as Traefik does"),
    (
        "core.defaultRuleSyntax",
        "core:\n  defaultRuleSyntax: v3\n",
        "core.defaultRuleSyntax",
        "v3.4",
    ),
    (
        "dnsChallenge.delayBeforeCheck",
        "certificatesResolvers:\n  le:\n    acme:\n"
        "      dnsChallenge: {provider: x, delayBeforeCheck: 5}\n",
        "certificatesResolvers.le.acme.dnsChallenge.delayBeforeCheck",
        "propagation.delayBeforeChecks",
    ),
]


@pytest.mark.parametrize(
    ("text", "path", "word"),
    [c[1:] for c in STATIC_WARNINGS],
    ids=[c[0] for c in STATIC_WARNINGS],
)
def test_static_options_not_supported_are_warnings(
    tmp_path: Path, text: str, path: str, word: str
) -> None:
    loaded = load_static(config_file=str(_static(tmp_path, text)), environ={})
    assert [(w.path, w.severity) for w in loaded.warnings] == [(path, "warning")]
    assert word in loaded.warnings[0].message
    assert loaded.warnings[0].line is not None


# Leaving these out would serve something less safely than written: errors.
STATIC_ERRORS: list[tuple[str, str, str]] = [
    (
        "serversTransport.spiffe",
        "serversTransport:\n  spiffe: {ids: [x]}\n",
        "serversTransport.spiffe",
    ),
    ("the rest provider", "providers:\n  rest: {insecure: true}\n", "providers.rest"),
    (
        "encodedCharacters refusing one",
        "  e:\n    address: ':81'\n    http:\n"
        "      encodedCharacters: {allowEncodedSlash: false}\n",
        "entryPoints.e.http.encodedCharacters",
    ),
    (
        "aliasHeadersStrategy reject",
        "  e:\n    address: ':81'\n    http:\n      aliasHeadersStrategy: reject\n",
        "entryPoints.e.http.aliasHeadersStrategy",
    ),
    (
        "tcpServersTransport.tls skipping verification",
        "tcpServersTransport:\n  tls: {insecureSkipVerify: true}\n",
        "tcpServersTransport.tls",
    ),
]


@pytest.mark.parametrize(
    ("text", "path"), [c[1:] for c in STATIC_ERRORS], ids=[c[0] for c in STATIC_ERRORS]
)
def test_static_options_that_change_security_are_errors(
    tmp_path: Path, text: str, path: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_static(config_file=str(_static(tmp_path, text)), environ={})
    assert [(i.path, i.severity) for i in caught.value.issues] == [(path, "error")]


def test_every_unsupported_entry_is_tested_or_shaped_alike() -> None:
    tested = {path for _, _, path, _ in STATIC_WARNINGS} | {path for _, _, path in STATIC_ERRORS}
    tops = {str(pattern[0]) for pattern in UNSUPPORTED}
    assert tops <= {path.split(".")[0] for path in tested} | {
        "log",
        "accessLog",
        "certificatesResolvers",
    }


def test_tls_true_on_a_static_entrypoint(tmp_path: Path) -> None:
    text = "  websecure:\n    address: ':443'\n    http:\n      tls: true\n"
    loaded = load_static(config_file=str(_static(tmp_path, text)), environ={})
    assert loaded.warnings == ()
    tls = loaded.config.entry_points["websecure"].http.tls
    assert tls is not None and tls.cert_resolver == ""


def test_null_static_sections_are_off(tmp_path: Path) -> None:
    loaded = load_static(config_file=str(_static(tmp_path, "api:\nping:\nlog:\n")), environ={})
    assert loaded.config.api is None and loaded.config.ping is None


# ---------------------------------------------------------------- check's hints

HINTS: list[tuple[str, str, list[str]]] = [
    ("a plain host", "Host(`a.com`)", []),
    ("a URL", "Host(`https://a.com`)", ["write Host(`a.com`)"]),
    (
        "a URL with a path",
        "Host(`http://a.com/app`)",
        ["write Host(`a.com`) && PathPrefix(`/app`)"],
    ),
    ("a host with a path", "Host(`a.com/app`)", ["holds a path"]),
    ("a port", "Host(`a.com:8443`)", ["holds a port"]),
    ("an IPv6 host is not a port", "Host(`::1`)", []),
    ("HostSNI with a port", "HostSNI(`db.a.com:5432`)", ["write HostSNI(`db.a.com`)"]),
    (
        "a v2 HostRegexp placeholder",
        "HostRegexp(`{sub:[a-z]+}.a.com`)",
        [r"write HostRegexp(`^[a-z]+\.a\.com$`)"],
    ),
    ("a v2 Path placeholder", "Path(`/u/{id:[0-9]+}`)", ["write PathRegexp(`^/u/[0-9]+$`)"]),
    ("a bare placeholder", "PathPrefix(`/{tenant}`)", ["write PathRegexp(`^/[^/]+`)"]),
    ("a regexp repetition is no placeholder", "PathRegexp(`^/[0-9]{3}$`)", []),
    ("under || and !", "Host(`a`) || !Host(`https://b`)", ["write Host(`b`)"]),
    ("a rule that does not parse is left to its error", "Host(`https://a`", []),
]


@pytest.mark.parametrize(("rule", "words"), [c[1:] for c in HINTS], ids=[c[0] for c in HINTS])
def test_rule_hints(rule: str, words: list[str]) -> None:
    kind = "tcp" if rule.startswith("HostSNI") else "http"
    hints = rule_hints(rule, kind)
    assert len(hints) == len(words), hints
    for hint, word in zip(hints, words, strict=True):
        assert word in hint


def test_cert_resolver_hint() -> None:
    assert cert_resolver_hint("", {"le": 1}) is None
    assert cert_resolver_hint("le", {"le": 1}) is None
    hint = cert_resolver_hint("letsencrypt", {"le": 1})
    assert hint is not None and "certificatesResolvers: le" in hint


def test_check_reports_the_hints_at_their_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("d.yml").write_text(
        "http:\n  routers:\n    a:\n      rule: Host(`https://a.com`)\n      service: s\n"
        "      tls:\n        certResolver: nope\n"
        "  services:\n    s:\n      loadBalancer:\n        servers: [{url: 'http://h'}]\n"
    )
    static = _static(tmp_path, "providers:\n  file: {filename: d.yml}\n")
    loaded = load_static(config_file=str(static), environ={})
    found = check_dynamic(loaded.config)
    assert [(i.path, i.line, i.severity) for i in found.issues] == [
        ("http.routers.a.rule", 4, "warning"),
        ("http.routers.a.tls.certResolver", 7, "warning"),
    ]
