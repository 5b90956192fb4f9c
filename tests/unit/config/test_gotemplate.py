"""The Go-template engine: rendering tables, error positions, limits, and the loader hook
(templated dynamic files in `load_dynamic_file` and `proxynow check`, never the static
configuration)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from proxynow.config.errors import ConfigError
from proxynow.config.gotemplate import Limits, TemplateError, position, render
from proxynow.config.loader import DynamicFileLoader, load_dynamic_file, load_static
from proxynow.config.static import StaticConfig
from proxynow.control.check import check_dynamic
from tests.support.gotemplate_cases import AGREED, ENV, ERRORS, LAYOUT


@pytest.mark.parametrize(("template", "expected"), AGREED)
def test_agrees_with_traefik(template: str, expected: str) -> None:
    output = render(template, environ=ENV)
    if "uuidv4" in template:  # random: only its length is compared
        assert len(output) == len(expected)
    else:
        assert output == expected


@pytest.mark.parametrize(("template", "expected"), LAYOUT)
def test_layout(template: str, expected: str) -> None:
    assert render(template, environ=ENV) == expected


@pytest.mark.parametrize(("template", "message", "line", "column"), ERRORS)
def test_errors_say_where(template: str, message: str, line: int, column: int) -> None:
    with pytest.raises(TemplateError) as caught:
        render(template, environ=ENV)
    assert message in caught.value.message
    assert position(template, caught.value.pos) == (line, column)


def test_env_reads_the_given_environment_only() -> None:
    assert render('{{ env "PN_A" }}|{{ env "HOME" }}', environ={"PN_A": "x"}) == "x|"


def test_variables_are_scoped_to_their_control_structure() -> None:
    with pytest.raises(TemplateError, match="undefined variable"):
        render("{{ if true }}{{ $x := 1 }}{{ end }}{{ $x }}")
    assert render("{{ $x := 1 }}{{ with 2 }}{{ $x := 3 }}{{ end }}{{ $x }}") == "1"
    assert render("{{ range $i := until 3 }}{{ end }}{{ $ }}") == "false"


def test_map_values_can_be_changed_by_set() -> None:
    assert render('{{ $d := dict }}{{ $_ := set $d "k" 1 }}{{ $d.k }}') == "1"


# ---------------------------------------------------------------- limits


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ range until 1000000 }}{{ end }}", "over the limit of 100000"),
        ("{{ range 2000000 }}{{ end }}", "over the step limit"),
        ("{{ range until 100000 }}{{ range until 100 }}{{ end }}{{ end }}", "steps"),
        ('{{ define "r" }}{{ template "r" }}{{ end }}{{ template "r" }}', "nested deeper"),
        ('{{ repeat 100000000 "ab" }}', "builds more than"),
        ('{{ $s := "ab" }}{{ range until 40 }}{{ $s = cat $s $s }}{{ end }}', "over the"),
        ("{{ $l := list 1 }}{{ range until 40 }}{{ $l = list $l $l }}{{ end }}{{ $l }}", "output"),
        ('{{ range until 1000 }}{{ repeat 100000 "x" }}{{ end }}', "output over the limit"),
        ('{{ printf "%999999999d" 1 }}', "builds more than"),
        ("{{ " + "(" * 200 + "1" + ")" * 200 + " }}", "nested deeper"),
        ("{{ if 1 }}" * 150 + "{{ end }}" * 150, "nested deeper"),
    ],
)
def test_limits_stop_runaway_templates(template: str, message: str) -> None:
    started = time.monotonic()
    with pytest.raises(TemplateError, match=message):
        render(template)
    assert time.monotonic() - started < 20


def test_limits_can_be_set() -> None:
    with pytest.raises(TemplateError, match="output over the limit of 10 characters"):
        render("{{ range until 20 }}x{{ end }}", limits=Limits(output=10))
    assert render("{{ range until 20 }}x{{ end }}", limits=Limits(output=20)) == "x" * 20


# ---------------------------------------------------------------- the loader


ROUTERS = """\
http:
  routers:
{{- range $i := until 3 }}
    app{{ $i }}:
      rule: Host(`{{ printf "app%d" $i }}.{{ env "PN_DOMAIN" | default "example.com" }}`)
      service: app
{{- end }}
  services:
    app:
      loadBalancer:
        servers:
          - url: http://127.0.0.1:8080
"""


def test_a_templated_dynamic_file_is_rendered_then_parsed(tmp_path: Path) -> None:
    path = tmp_path / "dynamic.yml"
    path.write_text(ROUTERS)
    config = load_dynamic_file(path, environ={"PN_DOMAIN": "test.local"})
    rules = {name: router.rule for name, router in config.http.routers.items()}
    assert rules == {f"app{i}": f"Host(`app{i}.test.local`)" for i in range(3)}


def test_toml_files_are_rendered_too(tmp_path: Path) -> None:
    path = tmp_path / "dynamic.toml"
    path.write_text(
        '{{ range $n := list "a" "b" }}\n[http.routers.{{ $n }}]\n'
        '  rule = "Host(`{{ $n }}.x`)"\n  service = "s"\n{{ end }}'
    )
    assert sorted(load_dynamic_file(path, environ={}).http.routers) == ["a", "b"]


def test_template_errors_name_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "dynamic.yml"
    path.write_text("http:\n  routers:\n    a: {{ until }}\n")
    with pytest.raises(ConfigError) as caught:
        load_dynamic_file(path, environ={})
    (issue,) = caught.value.issues
    assert (issue.file, issue.line, issue.column) == (str(path), 3, 11)
    assert str(issue).startswith(f"{path}:3:11: template: error calling until:")


def test_a_file_without_actions_is_not_rendered(tmp_path: Path) -> None:
    # `{ {` is not an action; text that only looks like a template stays as it is.
    path = tmp_path / "dynamic.yml"
    path.write_text('http:\n  routers:\n    a:\n      rule: "Host(`a`) && Path(`/{ {x} }`)"\n')
    assert load_dynamic_file(path).http.routers["a"].rule == "Host(`a`) && Path(`/{ {x} }`)"


def test_the_debug_option_logs_the_rendered_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "dynamic.yml"
    path.write_text(ROUTERS)
    caplog.set_level(logging.DEBUG, logger="proxynow.config.loader")
    DynamicFileLoader(environ={}).load(path)
    assert "rendered template" not in caplog.text
    DynamicFileLoader(environ={}, log_template=True).load(path)
    assert "Host(`app2.example.com`)" in caplog.text


def test_the_static_option_is_read(tmp_path: Path) -> None:
    static = tmp_path / "proxynow.yml"
    static.write_text(
        f"providers:\n  file:\n    directory: {tmp_path}\n    debugLogGeneratedTemplate: true\n"
    )
    loaded = load_static(config_file=str(static), environ={})
    assert loaded.config.providers.file is not None
    assert loaded.config.providers.file.debug_log_generated_template is True


def test_the_static_configuration_is_not_a_template(tmp_path: Path) -> None:
    # Traefik reads its static file as it is: `{{` there is plain text.
    static = tmp_path / "proxynow.yml"
    static.write_text("entryPoints:\n  web:\n    address: '127.0.0.1:{{ 80 }}'\n")
    with pytest.raises(ConfigError, match="address"):
        load_static(config_file=str(static), environ={})


def test_check_renders_dynamic_files(tmp_path: Path) -> None:
    (tmp_path / "good.yml").write_text(ROUTERS)
    (tmp_path / "bad.yml").write_text("http:\n  routers: {{ nope }}\n")
    static = StaticConfig.model_validate({"providers": {"file": {"directory": str(tmp_path)}}})
    issues = [i for i in check_dynamic(static).issues if i.file == str(tmp_path / "bad.yml")]
    assert [(i.line, i.column) for i in issues] == [(2, 15)]
    assert "function 'nope' not defined" in issues[0].message
