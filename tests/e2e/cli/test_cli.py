"""The `proxynow` command, run as a real process: check, schema, version."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from proxynow import __version__
from proxynow.cli import DOCKER_SOCKET, default_static
from proxynow.config.static import Log
from proxynow.logs import configure_logging
from tests.support.config_samples import FOUR_OBJECTS

CONSOLE_SCRIPT = Path(sys.executable).with_name("proxynow")


def proxynow(*args: str, cwd: Path, module: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `python -m proxynow` (or the console script) with a clean PROXYNOW_* environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROXYNOW_")}
    command = [sys.executable, "-m", "proxynow"] if module else [str(CONSOLE_SCRIPT)]
    return subprocess.run(
        [*command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write(
        tmp_path / "proxynow.yml",
        """
        entryPoints:
          web:
            address: ":8080"
        providers:
          file:
            directory: dynamic
        api: {}
        """,
    )
    write(
        tmp_path / "dynamic" / "routers.yml",
        """
        http:
          routers:
            app:
              rule: "Host(`app.example.com`)"
              service: app
              middlewares: [tohttps]
            dashboard:
              rule: "PathPrefix(`/dashboard`)"
              service: api@internal
          services:
            app:
              loadBalancer:
                servers:
                  - url: "http://127.0.0.1:9000"
        """,
    )
    write(
        tmp_path / "dynamic" / "middlewares.toml",
        """
        [http.middlewares.tohttps.redirectScheme]
        scheme = "https"
        """,
    )
    return tmp_path


def test_check_accepts_a_good_configuration(project: Path) -> None:
    result = proxynow("check", "--config", "proxynow.yml", cwd=project, module=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "configuration OK: static from proxynow.yml, 2 dynamic file(s)\n"
    assert result.stderr == ""


def test_check_is_quiet_about_a_grpc_web_middleware(project: Path) -> None:
    # The last type that was not applied: every type is now, so nothing is reported.
    write(
        project / "dynamic" / "middlewares.toml",
        """
        [http.middlewares.tohttps.grpcWeb]
        allowOrigins = ["*"]
        """,
    )
    result = proxynow("check", "--strict", "--config", "proxynow.yml", cwd=project, module=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout == "configuration OK: static from proxynow.yml, 2 dynamic file(s)\n"


def test_check_finds_the_config_file_in_the_working_directory(project: Path) -> None:
    result = proxynow("check", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "static from ./proxynow.yml" in result.stdout


def test_check_lists_every_error_with_position(project: Path) -> None:
    write(
        project / "dynamic" / "routers.yml",
        """
        http:
          routers:
            app:
              rule: "Host(`app.example.com`) &&"
              service: app
            other:
              rule: "Host(`other.example.com`)"
              service: nowhere
          services:
            app:
              loadBalancer:
                servers:
                  - url: "http://127.0.0.1:9000"
        """,
    )
    write(
        project / "dynamic" / "middlewares.toml",
        """
        [http.middlewares.strip.stripPrefx]
        prefixes = ["/app"]
        """,
    )
    result = proxynow("check", "--configFile=proxynow.yml", cwd=project)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0] == (
        "dynamic/middlewares.toml:1:1: http.middlewares.strip.stripPrefx: "
        "unknown middleware type 'stripPrefx' (did you mean 'stripPrefix'?)"
    )
    assert lines[1] == (
        "dynamic/routers.yml:4:7: http.routers.app.rule: unexpected end of rule at column 27"
    )
    assert lines[2].startswith("dynamic/routers.yml:6:5: http.routers.other: ")
    assert "nowhere" in lines[2]
    assert lines[3] == "3 errors, 0 warnings"
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


WARNING_ONLY = """
    http:
      routers:
        app:
          rule: "Host(`app.example.com`)"
          service: app
          entryPoints: [web, websecure]
      services:
        app:
          loadBalancer:
            servers:
              - url: "http://127.0.0.1:9000"
    """
FOUR_OBJECTS_REPORT = [
    "dynamic/routers.yml:6:7: http.routers.a.priorty: unknown key 'priorty' "
    "(did you mean 'priority'?)",
    "dynamic/routers.yml:8:7: http.routers.b.rule: unexpected end of rule at column 13",
    "dynamic/routers.yml:10:5: http.routers.c: service nowhere@file does not exist",
    "dynamic/routers.yml:21:5: warning: http.services.empty: loadBalancer has no servers "
    "(it answers 503)",
    "3 errors, 1 warning",
]
WARNING_REPORT = [
    "dynamic/routers.yml:3:5: warning: http.routers.app: entryPoint 'websecure' does not exist",
    "0 errors, 1 warning",
]
EXIT_CASES = [
    ("three errors and a warning", FOUR_OBJECTS, (), 1, FOUR_OBJECTS_REPORT),
    ("three errors and a warning, strict", FOUR_OBJECTS, ("--strict",), 1, FOUR_OBJECTS_REPORT),
    ("a warning only", WARNING_ONLY, (), 0, WARNING_REPORT),
    ("a warning only, strict", WARNING_ONLY, ("--strict",), 1, WARNING_REPORT),
]


@pytest.mark.parametrize(
    ("routers", "flags", "status", "stderr"),
    [case[1:] for case in EXIT_CASES],
    ids=[case[0] for case in EXIT_CASES],
)
def test_check_exit_status_errors_and_warnings(
    project: Path, routers: str, flags: tuple[str, ...], status: int, stderr: list[str]
) -> None:
    write(project / "dynamic" / "routers.yml", routers)
    (project / "dynamic" / "middlewares.toml").unlink()
    result = proxynow("check", *flags, cwd=project)
    assert result.returncode == status
    assert result.stderr.splitlines() == stderr
    ok = "configuration OK: static from ./proxynow.yml, 1 dynamic file(s)\n"
    assert result.stdout == (ok if status == 0 else "")


def test_check_lists_the_errors_of_every_file(project: Path) -> None:
    write(project / "dynamic" / "routers.yml", FOUR_OBJECTS)
    write(project / "dynamic" / "more" / "tcp.yml", "tcp:\n  routers:\n    t:\n      servce: x\n")
    write(project / "dynamic" / "middlewares.toml", "[http.middlewares.tohttps.redirectScheme]\n")
    write(project / "dynamic" / "broken.yml", "http: {routers: [\n")
    result = proxynow("check", cwd=project)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "dynamic/broken.yml:2:1: YAML syntax error: did not find expected node content",
        "dynamic/more/tcp.yml:4:7: tcp.routers.t.servce: unknown key 'servce' "
        "(did you mean 'service'?)",
        *FOUR_OBJECTS_REPORT[:3],
        FOUR_OBJECTS_REPORT[3],
        "5 errors, 1 warning",
    ]


def test_check_lists_at_most_the_limit_of_a_junk_file(project: Path) -> None:
    routers = "".join(f"    r{i}:\n      rule: x\n      bogus: {i}\n" for i in range(20000))
    write(project / "dynamic" / "junk.yml", "http:\n  routers:\n" + routers)
    result = proxynow("check", cwd=project)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 100 + 2
    assert lines[0] == "dynamic/junk.yml:5:7: http.routers.r0.bogus: unknown key 'bogus'"
    assert lines[-2:] == [
        "... and 19900 more errors in dynamic/junk.yml",
        "20000 errors, 0 warnings",
    ]


def test_check_reports_static_errors_without_traceback(project: Path) -> None:
    write(project / "proxynow.yml", "entryPoints:\n  web:\n    adress: ':80'\n")
    result = proxynow("check", "--log.level=DEBUG", cwd=project)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "./proxynow.yml:2:3: entryPoints.web: missing required key 'address'",
        "./proxynow.yml:3:5: entryPoints.web.adress: "
        "unknown key 'adress' (did you mean 'address'?)",
        "2 errors, 0 warnings",
    ]


def test_static_errors_past_the_limit_are_counted(project: Path) -> None:
    keys = "".join(f"  k{i}: {i}\n" for i in range(150))
    write(project / "proxynow.yml", "entryPoints:\n  web:\n    address: ':80'\napi:\n" + keys)
    result = proxynow("check", cwd=project)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 100 + 2
    assert lines[0] == "./proxynow.yml:5:3: api.k0: unknown key 'k0'"
    assert lines[-2:] == ["... and 50 more errors in ./proxynow.yml", "150 errors, 0 warnings"]


def test_check_yaml_syntax_error(project: Path) -> None:
    write(project / "proxynow.yml", "entryPoints:\n  web: [\n")
    result = proxynow("check", cwd=project)
    assert result.returncode == 1
    (first, summary) = result.stderr.splitlines()
    assert first.startswith("./proxynow.yml:3:1: YAML syntax error: ")
    assert summary == "1 error, 0 warnings"


def test_flags_are_validated_too(tmp_path: Path) -> None:
    result = proxynow("check", "--entryPoints.web.address=:http", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        "command line: entryPoints.web.address: invalid address ':http' "
        "(expected [host]:port[/tcp|/udp], e.g. :80)"
    )


@pytest.mark.parametrize(("flag", "key"), [("--static", "entryPoints"), ("--dynamic", "http")])
def test_schema(tmp_path: Path, flag: str, key: str) -> None:
    result = proxynow("schema", flag, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert key in schema["properties"]


def test_schema_defaults_to_static(tmp_path: Path) -> None:
    result = proxynow("schema", cwd=tmp_path)
    assert json.loads(result.stdout)["title"] == "proxynow static configuration"


def test_version(tmp_path: Path) -> None:
    result = proxynow("version", cwd=tmp_path, module=False)
    first, hot_path = result.stdout.splitlines()
    assert (result.returncode, first) == (0, f"proxynow {__version__}")
    assert hot_path.startswith(("hot path: compiled (mypyc): ", "hot path: pure Python"))


def test_unknown_command_is_a_usage_error(tmp_path: Path) -> None:
    result = proxynow("frobnicate", cwd=tmp_path)
    assert result.returncode == 2
    assert "invalid choice" in result.stderr
    assert "Traceback" not in result.stderr


def test_default_static_serves_web_and_docker_when_there() -> None:
    config = default_static()
    assert sorted(config.entry_points) == ["traefik", "web"]
    assert config.entry_points["web"].port in (80, 8000)
    # The API: on loopback only, 8080 unless another program holds it.
    assert config.entry_points["traefik"].host == "127.0.0.1"
    assert config.entry_points["traefik"].port in (8080, 0)
    assert config.api is not None and config.api.insecure
    assert (config.providers.docker is not None) == os.path.exists(DOCKER_SOCKET)
    assert config.providers.file is None


@pytest.fixture
def proxynow_logger() -> Iterator[logging.Logger]:
    """The `proxynow` logger, restored afterwards (caplog in later tests needs it to propagate)."""
    logger = logging.getLogger("proxynow")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield logger
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    for handler in saved[0]:
        logger.addHandler(handler)
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def test_logging_json_to_file(tmp_path: Path, proxynow_logger: logging.Logger) -> None:
    target = tmp_path / "proxynow.log"
    configure_logging(Log(level="INFO", format="json", file_path=str(target)))
    logger = logging.getLogger("proxynow.test")
    logger.debug("hidden")
    logger.info("shown %d", 1)
    configure_logging(Log())  # closes the file handler, back to stderr at ERROR
    (line,) = target.read_text().splitlines()
    entry = json.loads(line)
    assert (entry["level"], entry["logger"], entry["message"]) == (
        "info",
        "proxynow.test",
        "shown 1",
    )
    assert proxynow_logger.level == logging.ERROR


# ---------------------------------------------------------------- Traefik files proxynow reads

TRAEFIK_STATIC = """\
version: 2
entryPoints:
  web:
    address: 127.0.0.1:0
    http3: {}
tracing:
  otlp:
    http:
      endpoint: http://127.0.0.1:4318/v1/traces
metrics:
  datadog:
    address: 127.0.0.1:8125
hostResolver:
  cnameFlattening: false
experimental:
  kubernetesgateway: true
"""
TRAEFIK_WARNINGS = [
    "version",
    "entryPoints.web.http3",
    "tracing",
    "metrics.datadog",
    "hostResolver",
    "experimental",
]


def test_check_lists_the_static_warnings_and_passes(project: Path) -> None:
    write(project / "proxynow.yml", TRAEFIK_STATIC)
    result = proxynow("check", cwd=project)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[-1] == f"0 errors, {len(TRAEFIK_WARNINGS)} warnings"
    for path in TRAEFIK_WARNINGS:
        assert sum(f": warning: {path}: " in line for line in lines) == 1, (path, lines)
    assert proxynow("check", "--strict", cwd=project).returncode == 1


def test_check_refuses_a_static_option_that_changes_security(project: Path) -> None:
    write(
        project / "proxynow.yml",
        TRAEFIK_STATIC + "serversTransport:\n  spiffe:\n    ids: [spiffe://a/b]\n",
    )
    result = proxynow("check", cwd=project)
    assert result.returncode == 1
    refused = [
        line
        for line in result.stderr.splitlines()
        if "serversTransport.spiffe:" in line and ": warning:" not in line
    ]
    assert len(refused) == 1, result.stderr
    assert result.stderr.splitlines()[-1] == f"1 error, {len(TRAEFIK_WARNINGS)} warnings"


def test_run_starts_with_a_traefik_static_file_and_warns_once(tmp_path: Path) -> None:
    from tests.support.proc import start_proxynow

    static = yaml_load(TRAEFIK_STATIC)
    proxy = start_proxynow(tmp_path / "run", static, {"http": {"routers": {}}}, workers=1)
    try:
        assert "web" in proxy.ports
        stderr = proxy.stderr()
        for path in TRAEFIK_WARNINGS:
            assert stderr.count(f": warning: {path}: ") == 1, (path, stderr)
    finally:
        assert proxy.stop() == 0


def yaml_load(text: str) -> dict[str, object]:
    import yaml

    data: dict[str, object] = yaml.safe_load(text)
    return data
