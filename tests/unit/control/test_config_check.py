"""`proxynow check`'s core: every object validated on its own, the aggregator's findings as
errors and warnings at their positions, and a bounded report."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from proxynow.config.errors import MAX_ISSUES, ConfigError, ConfigIssue
from proxynow.config.loader import load_dynamic_file, load_static, read_file, validate_dynamic
from proxynow.config.objects import validate_dynamic_objects
from proxynow.config.static import StaticConfig
from proxynow.control import middleware_support
from proxynow.control.check import INVALID_OBJECT, Omitted, check_dynamic, report
from tests.support.config_samples import FOUR_OBJECTS

LB = {"loadBalancer": {"servers": [{"url": "http://127.0.0.1:9000"}]}}


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def run_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str]) -> list[str]:
    """`check`'s report lines for `files` written under `dynamic/`, then its totals."""
    for name, text in files.items():
        path = tmp_path / "dynamic" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dedent(text))
    monkeypatch.chdir(tmp_path)
    static = StaticConfig.model_validate(
        {
            "entryPoints": {"web": {"address": ":80"}},
            "providers": {"file": {"directory": "dynamic"}},
        }
    )
    result = check_dynamic(static)
    found = report(result.issues, result.omitted)
    return [*found.lines, found.summary]


# ---------------------------------------------------------------- object by object

OBJECT_CASES: list[tuple[str, dict[str, Any], list[str], dict[str, list[str]]]] = [
    (
        "one bad router among good ones",
        {
            "http": {
                "routers": {
                    "a": {"rule": "Host(`a`)", "service": "s", "priorty": 1},
                    "b": {"rule": "Host(`b`)", "service": "s"},
                },
                "services": {"s": LB},
            }
        },
        ["http.routers.a.priorty: unknown key 'priorty' (did you mean 'priority'?)"],
        {"routers": ["b"], "services": ["s"]},
    ),
    (
        "a bad object in each table",
        {
            "http": {
                "routers": {"r": {"rule": {"host": "a"}}},
                "services": {"s": {"loadBalancer": {"servers": [{"weight": 1}]}}, "ok": LB},
                "middlewares": {"m": {"stripPrefx": {}}},
                "serversTransports": {"t": {"maxIdleConnsPerHost": "many"}},
            },
            "tls": {
                "certificates": [{"certFile": "c"}, {"certFile": "c", "keyFile": "k"}],
                "options": {"o": {"minVersion": [12, 13]}},
            },
        },
        [
            "http.routers.r.rule: expected a string, got {'host': 'a'}",
            "http.services.s.loadBalancer.servers[0]: missing required key 'url'",
            "http.middlewares.m.stripPrefx: unknown middleware type 'stripPrefx' "
            "(did you mean 'stripPrefix'?)",
            "http.serversTransports.t.maxIdleConnsPerHost: expected an integer, got 'many'",
            "tls.certificates[0]: missing required key 'keyFile'",
            "tls.options.o.minVersion: expected a string, got [12, 13]",
        ],
        {"routers": [], "services": ["ok"], "certificates": ["k"]},
    ),
    (
        "structure: unknown keys, a table that is not a mapping, a name with @, a null section",
        {
            "htp": {},
            "http": {"routers": 5, "servics": {}},
            "tcp": {"routers": {"x@y": {"rule": "HostSNI(`*`)", "service": "s"}}},
            "udp": None,
        },
        [
            # Traefik ignores the keys at the root of a file, and reads a null as nothing.
            "warning: htp: unknown key 'htp' at the root of the file (did you mean 'http'?); "
            "ignored, as Traefik does",
            "http.routers: expected a mapping, got 5",
            "http.servics: unknown key 'servics' (did you mean 'services'?)",
            "tcp.routers.x@y: name 'x@y' must not contain '@' (it is reserved for references)",
        ],
        {"routers": [], "services": []},
    ),
    (
        "keys spelt in any case, sections spelt twice",
        {
            "HTTP": {"Routers": {"a": {"Rule": "Host(`a`)", "Service": "s"}}},
            "http": {
                "routers": {"b": {"rule": "Host(`b`)", "service": "s"}},
                "services": {"s": LB},
            },
        },
        [],
        {"routers": ["a", "b"], "services": ["s"]},
    ),
]


@pytest.mark.parametrize(
    ("data", "messages", "valid"),
    [case[1:] for case in OBJECT_CASES],
    ids=[case[0] for case in OBJECT_CASES],
)
def test_every_object_is_validated_on_its_own(
    data: dict[str, Any], messages: list[str], valid: dict[str, list[str]]
) -> None:
    found = validate_dynamic_objects(data)
    assert [str(issue) for issue in found.issues] == messages
    assert found.omitted == 0
    tables = {
        "routers": found.config.http.routers,
        "services": found.config.http.services,
        "certificates": {c.key_file: c for c in found.config.tls.certificates},
    }
    for table, names in valid.items():
        assert sorted(tables[table]) == names


def test_a_valid_file_gives_what_load_dynamic_file_gives(tmp_path: Path) -> None:
    path = Path(__file__).parents[1] / "config" / "examples" / "dynamic.yml"
    raw = read_file(path)
    found = validate_dynamic_objects(raw.data, file=raw.path, positions=raw.positions)
    # The example keeps a TCP loadBalancer's proxyProtocol, which Traefik 3.7 deprecates.
    assert [(issue.path, issue.severity) for issue in found.issues] == [
        ("tcp.services.db.loadBalancer.proxyProtocol", "warning")
    ]
    assert found.invalid == frozenset()
    assert found.config == load_dynamic_file(path)


def test_issues_carry_file_and_position(tmp_path: Path) -> None:
    path = tmp_path / "d.yml"
    path.write_text("http:\n  routers:\n    a:\n      rulee: x\n    b:\n      service: [1]\n")
    raw = read_file(path, eager_positions=True)
    found = validate_dynamic_objects(raw.data, file=raw.path, positions=raw.positions)
    assert found.issues == [
        ConfigIssue(
            "http.routers.a.rulee", "unknown key 'rulee' (did you mean 'rule'?)", str(path), 4, 7
        ),
        ConfigIssue("http.routers.b.service", "expected a string, got [1]", str(path), 6, 7),
    ]
    assert found.invalid == {("http", "routers", "a"), ("http", "routers", "b")}
    assert found.where[("http", "routers", "b")] == ("http", "routers", "b")


def test_twenty_thousand_invalid_routers_build_only_the_first_issues() -> None:
    routers = {
        f"r{i}": {"rule": f"Host(`h{i}`)", "service": "s", f"bogus{i}": 1} for i in range(20000)
    }
    # Every router also has an unknown top-level neighbour: issues past the limit are
    # counted whatever kind they are.
    data = {"http": {"routers": routers}, **{f"junk{i}": 1 for i in range(1000)}}
    found = validate_dynamic_objects(data, max_issues=MAX_ISSUES)
    assert len(found.issues) == MAX_ISSUES
    assert found.omitted == 21000 - MAX_ISSUES
    assert len(found.invalid) == 20000
    lines = report(found.issues, {(None, "error"): found.omitted}).lines
    assert len(lines) == MAX_ISSUES + 1
    assert lines[-1] == f"... and {21000 - MAX_ISSUES} more errors"


# ---------------------------------------------------------------- check: files and aggregator

CHECK_CASES: list[tuple[str, dict[str, str], list[str]]] = [
    (
        "unknown key, bad rule, missing service, load balancer without servers",
        {"routers.yml": FOUR_OBJECTS},
        [
            "dynamic/routers.yml:6:7: http.routers.a.priorty: unknown key 'priorty' "
            "(did you mean 'priority'?)",
            "dynamic/routers.yml:8:7: http.routers.b.rule: unexpected end of rule at column 13",
            "dynamic/routers.yml:10:5: http.routers.c: service nowhere@file does not exist",
            "dynamic/routers.yml:21:5: warning: http.services.empty: loadBalancer has no "
            "servers (it answers 503)",
            "3 errors, 1 warning",
        ],
    ),
    (
        "what uses an invalid object is disabled by it, not told it does not exist",
        {
            "d.yml": """
                http:
                  routers:
                    r:
                      rule: "Host(`r`)"
                      service: web
                      middlewares: [auth]
                  services:
                    web:
                      loadBalancer:
                        servers:
                          - weight: 2
                  middlewares:
                    auth:
                      basicAuht: {}
                """
        },
        [
            f"dynamic/d.yml:3:5: http.routers.r: service web@file is disabled: {INVALID_OBJECT}",
            f"dynamic/d.yml:3:5: http.routers.r: middleware auth@file is disabled: "
            f"{INVALID_OBJECT}",
            "dynamic/d.yml:11:13: http.services.web.loadBalancer.servers[0]: "
            "missing required key 'url'",
            "dynamic/d.yml:14:7: http.middlewares.auth.basicAuht: unknown middleware type "
            "'basicAuht' (did you mean 'basicAuth'?)",
            "4 errors, 0 warnings",
        ],
    ),
    (
        "every file's errors, syntax errors included",
        {
            "a.yml": 'http:\n  routers:\n    a:\n      rule: "Host(`a`)"\n      service: gone\n',
            "b.toml": '[http.services.s.loadBalancer]\nstrategy = "random"\n',
            "c.yml": "http: [\n",
            "sub/d.yml": 'tcp:\n  routers:\n    t:\n      rule: "HostSNI(`*`"\n      service: x\n',
        },
        [
            "dynamic/a.yml:3:5: http.routers.a: service gone@file does not exist",
            "dynamic/b.toml:2:1: http.services.s.loadBalancer.strategy: expected "
            "'wrr', 'p2c', 'hrw' or 'leasttime', got 'random'",
            "dynamic/c.yml:2:1: YAML syntax error: did not find expected node content",
            "dynamic/sub/d.yml:3:5: tcp.routers.t: service x@file does not exist",
            "dynamic/sub/d.yml:4:7: tcp.routers.t.rule: unexpected end of rule, "
            "expected ',' or ')' at column 12",
            "5 errors, 0 warnings",
        ],
    ),
    (
        "warnings only",
        {
            "w.yml": """
                http:
                  routers:
                    r:
                      rule: "Host(`r`)"
                      service: empty
                      entryPoints: [web, nope]
                  services:
                    empty:
                      loadBalancer: {}
                """
        },
        [
            "dynamic/w.yml:3:5: warning: http.routers.r: entryPoint 'nope' does not exist",
            "dynamic/w.yml:8:5: warning: http.services.empty: loadBalancer has no servers "
            "(it answers 503)",
            "0 errors, 2 warnings",
        ],
    ),
    (
        "a name defined differently in two files is a conflict, as when running",
        {
            "a.yml": "http:\n  services:\n    s:\n      loadBalancer:\n        servers: []\n",
            "b.yml": "http:\n  services:\n    s:\n      weighted: {}\n",
        },
        [
            "dynamic/a.yml:3:5: http.services.s: defined differently in several files: "
            "dynamic/a.yml, dynamic/b.yml",
            "dynamic/a.yml:3:5: warning: http.services.s: loadBalancer has no servers "
            "(it answers 503)",
            "1 error, 1 warning",
        ],
    ),
]


@pytest.mark.parametrize(
    ("files", "expected"),
    [case[1:] for case in CHECK_CASES],
    ids=[case[0] for case in CHECK_CASES],
)
def test_check_lists_every_problem_of_every_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str], expected: list[str]
) -> None:
    # Every type is applied now: grpcWeb stands for one that would not be.
    monkeypatch.setattr(
        middleware_support, "APPLIED", middleware_support.APPLIED - {("http", "grpcWeb")}
    )
    assert run_check(tmp_path, monkeypatch, files) == expected


def test_check_of_a_junk_file_lists_the_limit_and_one_line_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "http:\n  routers:\n" + "".join(
        f'    r{i}:\n      rule: "Host(`h{i}`)"\n      service: s\n      bogus: 1\n'
        for i in range(20000)
    )
    lines = run_check(
        tmp_path, monkeypatch, {"junk.yml": text, "other.yml": "htp:\n  routers: 5\n"}
    )
    junk = [line for line in lines if line.startswith("dynamic/junk.yml:")]
    assert len(junk) == MAX_ISSUES
    assert junk[0] == "dynamic/junk.yml:6:7: http.routers.r0.bogus: unknown key 'bogus'"
    assert lines[-3:] == [
        "... and 19900 more errors in dynamic/junk.yml",
        "dynamic/other.yml:1:1: warning: htp: unknown key 'htp' at the root of the file "
        "(did you mean 'http'?); ignored, as Traefik does",
        "20000 errors, 1 warning",
    ]


# ---------------------------------------------------------------- the report


def issue(file: str | None, line: int, severity: str = "error") -> ConfigIssue:
    return ConfigIssue("p", f"{severity} at {line}", file, line, 1, severity)  # type: ignore[arg-type]


REPORT_CASES: list[tuple[str, list[ConfigIssue], Omitted, int, list[str], str]] = [
    (
        "errors first, then warnings, each by file and position",
        [issue("b", 2, "warning"), issue("b", 1), issue("a", 9, "warning"), issue("a", 3)],
        {},
        100,
        [
            "a:3:1: p: error at 3",
            "b:1:1: p: error at 1",
            "a:9:1: warning: p: warning at 9",
            "b:2:1: warning: p: warning at 2",
        ],
        "2 errors, 2 warnings",
    ),
    (
        "past the limit of a file: its errors kept first, one line for the rest, "
        "after the warnings when only warnings are left out",
        [issue("a", 1, "warning"), issue("a", 2), issue("a", 3), issue("b", 1, "warning")],
        {},
        2,
        [
            "a:2:1: p: error at 2",
            "a:3:1: p: error at 3",
            "b:1:1: warning: p: warning at 1",
            "... and 1 more warning in a",
        ],
        "2 errors, 2 warnings",
    ),
    (
        "errors counted but never built join the file's line",
        [issue("a", 1), issue("a", 2, "warning")],
        {("a", "error"): 5},
        1,
        ["a:1:1: p: error at 1", "... and 5 more errors and 1 more warning in a"],
        "6 errors, 1 warning",
    ),
    ("nothing", [], {}, 100, [], "0 errors, 0 warnings"),
]


@pytest.mark.parametrize(
    ("issues", "omitted", "limit", "lines", "summary"),
    [case[1:] for case in REPORT_CASES],
    ids=[case[0] for case in REPORT_CASES],
)
def test_report(
    issues: list[ConfigIssue],
    omitted: Omitted,
    limit: int,
    lines: list[str],
    summary: str,
) -> None:
    found = report(issues, omitted, limit)
    assert (found.lines, found.summary) == (lines, summary)


def test_a_static_configuration_lists_its_first_errors_and_counts_the_rest(
    tmp_path: Path,
) -> None:
    path = tmp_path / "proxynow.yml"
    # Unknown keys inside a section are errors (at the root they are warnings).
    path.write_text("api:\n" + "".join(f"  k{i}: {i}\n" for i in range(5000)) + "workers: many\n")
    with pytest.raises(ConfigError) as caught:
        load_static(config_file=str(path), environ={})
    assert len(caught.value.issues) == MAX_ISSUES
    assert caught.value.issues[:2] == [
        ConfigIssue("api.k0", "unknown key 'k0'", str(path), 2, 3),
        ConfigIssue("api.k1", "unknown key 'k1'", str(path), 3, 3),
    ]
    assert caught.value.omitted == {str(path): 5001 - MAX_ISSUES}


@pytest.mark.parametrize(
    "data", [case[1] for case in OBJECT_CASES[:2]], ids=[case[0] for case in OBJECT_CASES[:2]]
)
def test_the_messages_are_those_of_validate_dynamic(data: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as whole:
        validate_dynamic(data)
    assert sorted(map(str, validate_dynamic_objects(data).issues)) == sorted(
        map(str, whole.value.issues)
    )


def test_the_aggregators_findings_count_towards_the_limit_of_their_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = "".join(
        f'    a{i}:\n      rule: "Host(`a`) &&"\n      service: gone\n' for i in range(60)
    )
    warned = "".join(
        f'    w{i}:\n      rule: "Host(`w`)"\n      service: s\n      entryPoints: [web, nope]\n'
        for i in range(10)
    )
    service = "  services:\n    s:\n      loadBalancer:\n        servers: [{url: 'http://h'}]\n"
    lines = run_check(
        tmp_path, monkeypatch, {"many.yml": "http:\n  routers:\n" + broken + warned + service}
    )
    assert len(lines) == MAX_ISSUES + 2
    assert lines[-2:] == [
        "... and 20 more errors and 10 more warnings in dynamic/many.yml",
        "120 errors, 10 warnings",
    ]


def test_check_gives_routers_what_run_gives_them(tmp_path: Path) -> None:
    # With api.insecure, `run` adds the entrypoint `traefik` but gives it to no router that
    # names none, and serves api@internal, ping@internal and noop@internal (always there),
    # but not prometheus@internal: `check` must agree.
    (tmp_path / "dynamic").mkdir()
    (tmp_path / "dynamic" / "r.yml").write_text(
        dedent(
            """
            http:
              routers:
                plain: {rule: "Host(`a`)", service: api@internal}
                noop: {rule: "Host(`b`)", service: noop@internal}
                metrics: {rule: "Host(`d`)", service: prometheus@internal}
                internal: {rule: "Host(`c`)", service: api@internal, entryPoints: [traefik]}
            """
        )
    )
    static = StaticConfig.model_validate(
        {
            "entryPoints": {"web": {"address": ":80"}},
            "api": {"insecure": True},
            "providers": {"file": {"directory": str(tmp_path / "dynamic")}},
        }
    )
    messages = [issue.message for issue in check_dynamic(static).issues]
    assert len(messages) == 1 and "prometheus@internal" in messages[0], messages
