"""Every kind of configuration error: exact message, path in the user's spelling, position."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from proxynow.config.errors import ConfigError, ConfigIssue
from proxynow.config.loader import load_dynamic_file, load_static


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def dynamic_issues(path: Path) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as caught:
        load_dynamic_file(path)
    return caught.value.issues


def test_unknown_key_with_suggestion_and_position(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "d.yml",
        """
        http:
          routers:
            api:
              rulee: "Host(`a`)"
              service: s
        """,
    )
    assert dynamic_issues(path) == [
        ConfigIssue(
            "http.routers.api.rulee", "unknown key 'rulee' (did you mean 'rule'?)", str(path), 4, 7
        )
    ]


def test_rendering_is_file_line_column_path_message(tmp_path: Path) -> None:
    path = write(tmp_path, "d.yml", "http:\n  routers:\n    api:\n      rulee: x\n")
    (issue,) = dynamic_issues(path)
    assert str(issue) == (
        f"{path}:4:7: http.routers.api.rulee: unknown key 'rulee' (did you mean 'rule'?)"
    )


def test_unknown_key_without_close_match_has_no_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, "d.yml", "http:\n  routers:\n    api:\n      zzz: 1\n")
    (issue,) = dynamic_issues(path)
    assert issue.message == "unknown key 'zzz'"


def test_path_keeps_users_spelling_of_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "d.yml",
        """
        http:
          Services:
            web:
              loadbalancer:
                servers:
                  - url: http://a
                    weight: heavy
        """,
    )
    (issue,) = dynamic_issues(path)
    assert issue == ConfigIssue(
        "http.Services.web.loadbalancer.servers[0].weight",
        "expected an integer, got 'heavy'",
        str(path),
        7,
        13,
    )


def test_wrong_type_bool(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "d.yml",
        """
        http:
          services:
            s:
              loadBalancer:
                passHostHeader: sometimes
        """,
    )
    (issue,) = dynamic_issues(path)
    assert issue.path == "http.services.s.loadBalancer.passHostHeader"
    assert issue.message == "expected a boolean (true or false), got 'sometimes'"
    assert (issue.line, issue.column) == (5, 9)


def test_missing_required_key_points_at_the_parent(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "d.yml",
        """
        http:
          services:
            s:
              loadBalancer:
                servers:
                  - weight: 2
        """,
    )
    (issue,) = dynamic_issues(path)
    assert issue == ConfigIssue(
        "http.services.s.loadBalancer.servers[0]", "missing required key 'url'", str(path), 6, 13
    )


def test_unknown_middleware_type_with_suggestion(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "d.yml",
        """
        http:
          middlewares:
            auth:
              basicAuht:
                users: ["u:p"]
        """,
    )
    (issue,) = dynamic_issues(path)
    assert issue == ConfigIssue(
        "http.middlewares.auth.basicAuht",
        "unknown middleware type 'basicAuht' (did you mean 'basicAuth'?)",
        str(path),
        4,
        7,
    )


def test_two_middleware_types(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "d.yml",
        """
        http:
          middlewares:
            both:
              stripPrefix:
                prefixes: ["/a"]
              addPrefix:
                prefix: /b
        """,
    )
    (issue,) = dynamic_issues(path)
    assert issue == ConfigIssue(
        "http.middlewares.both",
        "middleware has 2 types (addPrefix, stripPrefix); exactly one is allowed",
        str(path),
        3,
        5,
    )


def test_middleware_without_type(tmp_path: Path) -> None:
    path = write(tmp_path, "d.yml", "http:\n  middlewares:\n    none: {}\n")
    (issue,) = dynamic_issues(path)
    assert issue.path == "http.middlewares.none"
    assert issue.message.startswith("middleware has no type; set exactly one of: addPrefix, ")


def test_two_service_kinds(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "d.yml",
        """
        http:
          services:
            s:
              loadBalancer:
                servers: [{url: "http://a"}]
              weighted:
                services: [{name: x}]
        """,
    )
    (issue,) = dynamic_issues(path)
    assert issue == ConfigIssue(
        "http.services.s",
        "service has 2 types (loadBalancer, weighted); exactly one is allowed",
        str(path),
        3,
        5,
    )


def test_at_sign_in_router_name(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "d.yml",
        """
        http:
          routers:
            api@file:
              rule: "Host(`a`)"
              middlewares: ["auth@file"]
        """,
    )
    (issue,) = dynamic_issues(path)
    assert issue == ConfigIssue(
        "http.routers.api@file",
        "name 'api@file' must not contain '@' (it is reserved for references)",
        str(path),
        3,
        5,
    )


def test_yaml_syntax_error_has_position(tmp_path: Path) -> None:
    path = write(tmp_path, "d.yml", "http:\n  routers:\n    api: [unclosed\n  services: {}\n")
    (issue,) = dynamic_issues(path)
    assert issue.file == str(path)
    assert issue.message.startswith("YAML syntax error: ")
    assert (issue.line, issue.column) == (4, 11)


def test_toml_syntax_error_has_position(tmp_path: Path) -> None:
    path = write(tmp_path, "d.toml", '[http.routers.api]\nrule = "Host(`a`)"\nservice = \n')
    (issue,) = dynamic_issues(path)
    assert issue.message.startswith("TOML syntax error: ")
    assert (issue.file, issue.line) == (str(path), 3)


def test_toml_positions_are_found_by_scanning(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "d.toml",
        """
        [http.routers.api]
        rulee = "Host(`a`)"

        [[http.services.s.loadBalancer.servers]]
        url = "http://a"

        [[http.services.s.loadBalancer.servers]]
        url = "http://b"
        weight = "x"
        """,
    )
    issues = dynamic_issues(path)
    assert [(i.path, i.line, i.column) for i in issues] == [
        ("http.routers.api.rulee", 2, 1),
        ("http.services.s.loadBalancer.servers[1].weight", 9, 1),
    ]


def test_all_errors_are_reported_not_only_the_first(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "d.yml",
        """
        http:
          routers:
            a: {rulee: x}
            b: {priority: high}
          services:
            s: {}
        """,
    )
    assert [issue.path for issue in dynamic_issues(path)] == [
        "http.routers.a.rulee",
        "http.routers.b.priority",
        "http.services.s",
    ]


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "d.yml", "- just\n- a list\n")
    (issue,) = dynamic_issues(path)
    assert issue.message == "expected a mapping of keys at the top level"


def test_unreadable_file(tmp_path: Path) -> None:
    (issue,) = dynamic_issues(tmp_path / "absent.yml")
    assert issue.message.startswith("cannot read file: ")


def test_static_errors_name_their_source(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "proxynow.yml",
        """
        entryPoints:
          web:
            address: "80"
        log:
          level: chatty
        """,
    )
    with pytest.raises(ConfigError) as caught:
        load_static(["--workers=many"], {"PROXYNOW_API_DEBUG": "maybe"}, str(path))
    rendered = sorted(str(issue) for issue in caught.value.issues)
    assert rendered == [
        f"{path}:3:5: entryPoints.web.address: invalid address '80' "
        "(expected [host]:port[/tcp|/udp], e.g. :80)",
        f"{path}:5:3: log.level: expected 'TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL' "
        "or 'PANIC', got 'CHATTY'",
        "command line: workers: expected an integer, got 'many'",
        "environment: api.debug: expected a boolean (true or false), got 'maybe'",
    ]


def test_malformed_flag() -> None:
    with pytest.raises(ConfigError) as caught:
        load_static(["positional"], {}, search_dirs=[])
    (issue,) = caught.value.issues
    assert str(issue) == (
        "command line: unexpected argument 'positional' (flags look like --a.b=value)"
    )
