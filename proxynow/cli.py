"""The `proxynow` command: run | check | healthcheck | schema | version.

`run`, `check` and `healthcheck` take the static configuration from `--config F` (alias
`--configFile`, as in Traefik, else the usual search places), Traefik-style flags such as
`--entryPoints.web.address=:80` and `PROXYNOW_*` variables. Configuration mistakes are
printed as `file:line:column: path: message`, one per line, never as a traceback: errors
first, then warnings (`file:line:column: warning: ...`), then `N errors, M warnings`.
`check` exits 1 on any error, 0 with warnings only (1 with `--strict`). `run` prints the
static configuration's warnings (options not supported yet, deprecated keys) once at start.
`healthcheck` GETs `/ping` on the ping entrypoint (proxynow/control/ping.py): exit 0 on a
200, 1 otherwise. As with `traefik`, flags without a command mean `run`
(`proxynow --providers.docker` is `proxynow run --providers.docker`), which is what lets a
container's ENTRYPOINT be `proxynow` and its command the flags.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from proxynow import __version__, compiled
from proxynow.config.errors import ConfigError
from proxynow.config.loader import LoadedStatic, load_static
from proxynow.config.static import StaticConfig

if TYPE_CHECKING:
    from proxynow.control.check import Omitted, Report

__all__ = ["default_static", "main"]

DOCKER_SOCKET = "/var/run/docker.sock"
EXIT_CONFIG = 1
EXIT_UNHEALTHY = 1
HEALTHCHECK_TIMEOUT = 3.0
API_HOST = "127.0.0.1"
API_PORT = 8080


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="proxynow",
        description="A Docker-label-driven edge router that reads Traefik's configuration.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text in (
        ("run", "start the proxy"),
        ("check", "validate the static configuration and the file provider's dynamic files"),
        ("healthcheck", "exit 0 if /ping on the ping entrypoint answers 200, else 1"),
    ):
        command = commands.add_parser(
            name,
            help=text,
            allow_abbrev=False,
            epilog="Other flags set static configuration, e.g. --entryPoints.web.address=:80",
        )
        command.add_argument(
            "--config", "--configFile", dest="config", metavar="FILE", help="static config file"
        )
        if name == "check":
            command.add_argument(
                "--strict", action="store_true", help="fail (exit 1) on warnings too"
            )
        if name == "healthcheck":
            command.add_argument(
                "--timeout",
                type=float,
                default=HEALTHCHECK_TIMEOUT,
                metavar="SECONDS",
                help=f"connect and read timeout (default {HEALTHCHECK_TIMEOUT:g})",
            )
    schema = commands.add_parser("schema", help="print the JSON Schema of the configuration")
    which = schema.add_mutually_exclusive_group()
    which.add_argument("--static", dest="kind", action="store_const", const="static")
    which.add_argument("--dynamic", dest="kind", action="store_const", const="dynamic")
    commands.add_parser("version", help="print the version")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = _parser()
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments and arguments[0].startswith("--") and arguments[0] not in ("--help",):
        arguments.insert(0, "run")  # Traefik's root command is `run`
    try:
        args, extra = parser.parse_known_args(arguments)
        if extra and args.command not in ("run", "check", "healthcheck"):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    if args.command == "version":
        print(f"proxynow {__version__}")
        print(f"hot path: {compiled.describe()}")
        return 0
    if args.command == "schema":
        return _schema(args.kind or "static")
    try:
        loaded = load_static(extra, os.environ, args.config)
    except ConfigError as exc:
        from proxynow.control.check import report

        omitted: Omitted = {(file, "error"): count for file, count in exc.omitted.items()}
        _print_report(report(exc.issues, omitted))
        return EXIT_CONFIG
    if args.command == "check":
        return _check(loaded, strict=args.strict)
    if args.command == "healthcheck":
        return _healthcheck(loaded.config, args.timeout)
    return _run(loaded)


def _print_report(found: Report) -> None:
    for line in found.lines:
        print(line, file=sys.stderr)
    print(found.summary, file=sys.stderr)


def _schema(kind: str) -> int:
    from proxynow.config.schema import dynamic_schema, static_schema

    schema = static_schema() if kind == "static" else dynamic_schema()
    print(json.dumps(schema, indent=2, ensure_ascii=False))
    return 0


def _check(loaded: LoadedStatic, *, strict: bool) -> int:
    from proxynow.control.check import check_dynamic, dynamic_files, report

    result = check_dynamic(loaded.config)
    found = report([*loaded.warnings, *result.issues], result.omitted)
    if found.errors or found.warnings:
        _print_report(found)
    if found.errors or (strict and found.warnings):
        return EXIT_CONFIG
    provider = loaded.config.providers.file
    files = len(dynamic_files(provider)) if provider is not None else 0
    source = loaded.file or "flags, environment and defaults"
    print(f"configuration OK: static from {source}, {files} dynamic file(s)")
    return 0


def _healthcheck(static: StaticConfig, timeout: float) -> int:
    from proxynow.control.ping import ping_target, probe

    target = ping_target(static)
    if isinstance(target, str):
        print(f"proxynow healthcheck: {target}", file=sys.stderr)
        return EXIT_UNHEALTHY
    healthy, said = probe(target, timeout)
    print(f"proxynow healthcheck: {said}", file=sys.stderr if not healthy else sys.stdout)
    return 0 if healthy else EXIT_UNHEALTHY


def _run(loaded: LoadedStatic) -> int:
    from proxynow.control import run as controlplane
    from proxynow.logs import configure_logging

    static = default_static() if loaded.empty else loaded.config
    # Once, before anything starts, whatever the log level: what is not served as written.
    for warning in loaded.warnings:
        print(warning, file=sys.stderr, flush=True)
    configure_logging(static.log)
    return controlplane.run(static)


def default_static() -> StaticConfig:
    """What `run` serves with no configuration at all: `web` on :80 (or :8000), Docker,
    and the API on 127.0.0.1:8080 (never on a public address unless asked; another port
    chosen by the kernel when 8080 is taken, and the start-up line says which)."""
    port = 80 if _can_bind(80) else 8000
    api_port = API_PORT if _can_bind(API_PORT, API_HOST) else 0
    data: dict[str, object] = {
        "entryPoints": {
            "web": {"address": f":{port}"},
            "traefik": {"address": f"{API_HOST}:{api_port}"},
        },
        "api": {"insecure": True},
    }
    if os.path.exists(DOCKER_SOCKET):
        data["providers"] = {"docker": {}}
    return StaticConfig.model_validate(data)


def _can_bind(port: int, host: str = "") -> bool:
    """Whether this process may listen on `port` (privileges, and nobody else on it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True
