"""Reading configuration: files, CLI flags and `PROXYNOW_*` variables → validated models.

Static configuration merges its sources with the precedence flags > environment > file >
defaults (Traefik makes them mutually exclusive; merging lets a flag override one value
of a file). A dynamic file is read into a `DynamicConfig`. Every failure is a
`ConfigError` listing all issues with their file positions; nothing raises anything else.

What Traefik reads but proxynow only warns about (compat.py: keys at the root of a file
that are not sections, deprecated keys, static options not supported yet) is collected as
warnings: `LoadedStatic.warnings` for the static configuration, which `run` prints once
and `check` lists; the file provider's files log theirs once per change that brings them.
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from proxynow.config.compat import unsupported_options
from proxynow.config.dynamic import (
    DynamicConfig,
    HTTPConfig,
    TCPConfig,
    TLSConfig,
    UDPConfig,
    invalid_names,
)
from proxynow.config.errors import (
    MAX_ISSUES,
    ConfigError,
    ConfigIssue,
    Loc,
    Positions,
    Severity,
    format_path,
    issues_from_validation,
    located,
    root_key_message,
)
from proxynow.config.gotemplate import TemplateError
from proxynow.config.gotemplate import position as template_position
from proxynow.config.gotemplate import render as render_template
from proxynow.config.keys import Notes, field_key, normalize, shape_of
from proxynow.config.positions import (
    LazyPositions,
    toml_positions,
    yaml_node_positions,
    yaml_positions,
)
from proxynow.config.sources import parse_environment, parse_flags
from proxynow.config.static import StaticConfig

__all__ = [
    "CONFIG_NAMES",
    "DynamicFileLoader",
    "LoadedStatic",
    "default_search_dirs",
    "find_config_file",
    "load_dynamic_file",
    "load_static",
    "read_dynamic_file",
    "read_file",
    "validate",
    "validate_dynamic",
]

log = logging.getLogger(__name__)

CONFIG_NAMES = ("proxynow.yml", "proxynow.yaml", "proxynow.toml")
FLAGS_SOURCE = "command line"
ENV_SOURCE = "environment"

M = TypeVar("M", bound=BaseModel)
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RawFile:
    """A parsed configuration file: its data and where each key is."""

    path: str
    data: dict[str, Any]
    positions: Positions


@dataclass(frozen=True, slots=True)
class LoadedStatic:
    """The static configuration and what it came from."""

    config: StaticConfig
    file: str | None
    # True when no file, flag or variable configured anything: `run` then picks defaults.
    empty: bool
    # What is read but not as written: stray root keys, deprecated keys, options left out.
    warnings: tuple[ConfigIssue, ...] = ()


def read_file(path: str | os.PathLike[str], *, eager_positions: bool = False) -> RawFile:
    """Parse a YAML or TOML file (by extension; YAML otherwise) into a raw mapping.

    The positions of a YAML file are worked out when first used, by parsing the text
    again; with `eager_positions` (a caller that will need them, `check`) they come from
    the one parse, which saves that second one.
    """
    name = os.fspath(path)
    return _parse_text(name, _read_text(name), eager_positions)


def read_dynamic_file(
    path: str | os.PathLike[str],
    *,
    eager_positions: bool = False,
    environ: Mapping[str, str] | None = None,
    log_template: bool = False,
    data: bytes | None = None,
) -> RawFile:
    """`read_file` for a dynamic file of the file provider: rendered as a Go template
    first, as Traefik does (the static configuration is not). A file without `{{` is
    parsed as it is. Positions of later errors refer to the rendered text; with
    `log_template` (`providers.file.debugLogGeneratedTemplate`) it is logged at debug
    level. `environ` is what the template's `env` reads (default: the process's). `data`
    is the file's content when the caller has read it already (it is not read again)."""
    name = os.fspath(path)
    text = _read_text(name) if data is None else _decode(name, data)
    if "{{" in text:
        text = _render(name, text, environ)
        if log_template:
            log.debug("file %s: rendered template:\n%s", name, text)
    return _parse_text(name, text, eager_positions)


def _read_text(name: str) -> str:
    try:
        return Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigIssue("", f"cannot read file: {exc}", name)]) from None


def _decode(name: str, data: bytes) -> str:
    """`data` as `_read_text` would have read it (universal newlines included)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([ConfigIssue("", f"cannot read file: {exc}", name)]) from None
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def _render(name: str, text: str, environ: Mapping[str, str] | None) -> str:
    try:
        return render_template(text, environ=environ)
    except TemplateError as exc:
        line, column = template_position(text, exc.pos)
        issue = ConfigIssue("", f"template: {exc.message}", name, line, column)
        raise ConfigError([issue]) from None


def _parse_text(name: str, text: str, eager_positions: bool) -> RawFile:
    if name.endswith(".toml"):
        data, positions = _parse_toml(name, text)
    else:
        data, positions = _parse_yaml(name, text, eager_positions)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        issue = ConfigIssue("", "expected a mapping of keys at the top level", name, 1, 1)
        raise ConfigError([issue])
    return RawFile(name, data, positions)


# libyaml when PyYAML has it: the file provider re-reads a file on every change, and the
# pure-Python parser took 2.4 ms for a six-router file (bench config-churn) on the core
# the proxy serves from.
_YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse_yaml(name: str, text: str, eager_positions: bool = False) -> tuple[Any, Positions]:
    loader = _YAML_LOADER(text)
    try:
        positions: Positions
        if eager_positions:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
            positions = yaml_node_positions(node)
        else:
            data = loader.get_single_data()
            # Worked out (parsing the text again) only if an error has to be reported.
            positions = LazyPositions(lambda: yaml_positions(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        issue = ConfigIssue("", f"YAML syntax error: {problem}", name, line, column)
        raise ConfigError([issue]) from None
    finally:
        loader.dispose()
    return data, positions


_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def _parse_toml(name: str, text: str) -> tuple[Any, Positions]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _TOML_AT.search(message)
        line, column = (int(match[1]), int(match[2])) if match else (None, None)
        problem = _TOML_AT.sub("", message)
        raise ConfigError(
            [ConfigIssue("", f"TOML syntax error: {problem}", name, line, column)]
        ) from None
    return data, LazyPositions(lambda: toml_positions(text))


def validate(
    model: type[M],
    raw: Mapping[str, Any],
    *,
    file: str | None = None,
    positions: Positions | None = None,
    notes: Notes | None = None,
) -> M:
    """Normalise key case and validate `raw` against `model`, or raise `ConfigError`
    (deprecated keys met go to `notes`)."""
    data = normalize(model, dict(raw), notes)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        issues = issues_from_validation(exc, model, raw, file=file, positions=positions)
        raise ConfigError(issues) from None


def validate_dynamic(
    raw: Mapping[str, Any],
    *,
    file: str | None = None,
    positions: Positions | None = None,
    warnings: list[ConfigIssue] | None = None,
) -> DynamicConfig:
    """Validate raw dynamic configuration from a provider (names must not contain `@`);
    what is read but not as written is appended to `warnings`."""
    raw, strays = _without_strays(raw, DynamicConfig)
    notes = Notes() if warnings is not None else None
    config = validate(DynamicConfig, raw, file=file, positions=positions, notes=notes)
    if warnings is not None and notes is not None:
        warnings.extend(_warnings(strays, notes, file, positions))
    issues = []
    for loc, message in invalid_names(config):
        user_loc = _spelt_as(raw, loc)
        line, column = (positions or {}).get(user_loc, (None, None))
        issues.append(ConfigIssue(format_path(user_loc), message, file, line, column))
    if issues:
        raise ConfigError(issues)
    return config


def _without_strays(
    raw: Mapping[str, Any], model: type[BaseModel]
) -> tuple[dict[str, Any], list[str]]:
    """`raw` without the root keys that are not `model`'s (Traefik ignores them)."""
    strays = [key for key in raw if not isinstance(key, str) or field_key(model, key) is None]
    if not strays:
        return dict(raw), []
    return {key: value for key, value in raw.items() if key not in strays}, strays


def _warnings(
    strays: list[Any],
    notes: Notes,
    file: str | None,
    positions: Positions | None,
    sections: tuple[str, ...] = ("http", "tcp", "udp", "tls"),
) -> list[ConfigIssue]:
    found = [
        located((key,), root_key_message(key, sections), file, positions, "warning")
        for key in strays
    ]
    found += [located(loc, message, file, positions, "warning") for loc, message in notes.found]
    return found


def _spelt_as(raw: Any, loc: Loc) -> Loc:
    """`loc` with each key replaced by the raw key that matches it case-insensitively."""
    result: list[str | int] = []
    node = raw
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str):
            part = next((k for k in node if str(k).lower() == part.lower()), part)
            node = node.get(part)
        result.append(part)
    return tuple(result)


def load_dynamic_file(
    path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None
) -> DynamicConfig:
    """Read (rendering its template) and validate one dynamic configuration file."""
    raw = read_dynamic_file(path, environ=environ)
    return validate_dynamic(raw.data, file=raw.path, positions=raw.positions)


# The named-object tables of a dynamic file, as spelt in it: protocol → section keys.
_TABLES = {
    "http": ("routers", "services", "middlewares", "serversTransports"),
    "tcp": ("routers", "services", "middlewares", "serversTransports"),
    "udp": ("routers", "services"),
}
Known = dict[tuple[str, str, str], tuple[Any, Any]]  # (protocol, section, name) → (raw, model)


class DynamicFileLoader:
    """`load_dynamic_file` for a file read again and again (the file provider's watch).

    A change rewrites the whole file, but mostly leaves all objects but one as they were.
    Every router, service, middleware and transport whose raw data equals what it was the
    last time this file was read is not normalised and validated again: its model from
    then is reused, the very same object, which also makes every later comparison of it
    (the aggregator's, the snapshot delta's) an identity check. Anything unusual (keys not
    spelt as in the schema, an error) goes through `validate_dynamic` as usual, so errors
    and their positions are exactly those of `load_dynamic_file`.
    """

    def __init__(
        self, *, environ: Mapping[str, str] | None = None, log_template: bool = False
    ) -> None:
        self._known: dict[str, Known] = {}
        self._environ = environ
        self._log_template = log_template
        self._warned: dict[str, set[str]] = {}

    def load(self, path: str | os.PathLike[str], data: bytes | None = None) -> DynamicConfig:
        """The file's configuration; `data`, when given, is its content (read already)."""
        raw = read_dynamic_file(
            path, environ=self._environ, log_template=self._log_template, data=data
        )
        known = self._known.pop(raw.path, {})
        notes = Notes()
        config = _validate_reusing(raw.data, known, notes)
        warnings: list[ConfigIssue] = []
        if config is None:
            config = validate_dynamic(
                raw.data, file=raw.path, positions=raw.positions, warnings=warnings
            )
        else:
            warnings = _warnings([], notes, raw.path, raw.positions)
        self._known[raw.path] = _remember(raw.data, config)
        self._log_new(raw.path, warnings)
        return config

    def _log_new(self, path: str, warnings: list[ConfigIssue]) -> None:
        """Log the warnings this file did not have the last time (once, not every read;
        a warning that only moved to another line is the same warning)."""
        before = self._warned.get(path, set())
        now = {f"{warning.path}: {warning.message}" for warning in warnings}
        for warning in warnings:
            if f"{warning.path}: {warning.message}" not in before:
                log.warning("%s", warning)
        self._warned[path] = now

    def retain(self, paths: Iterable[str]) -> None:
        """Forget the files not in `paths` (deleted ones: their objects are not needed)."""
        keep = {os.fspath(path) for path in paths}
        for path in [known for known in self._known if known not in keep]:
            del self._known[path]
        for path in [warned for warned in self._warned if warned not in keep]:
            del self._warned[path]


def _validate_reusing(data: dict[str, Any], known: Known, notes: Notes) -> DynamicConfig | None:
    """`data` validated with the known objects reused; None when the usual path is needed.
    Deprecated keys of the objects validated anew go to `notes`."""
    substituted: dict[str, Any] = {}
    for top, value in data.items():
        sections = _TABLES.get(top)
        if top == "tls":
            substituted[top] = normalize(TLSConfig, value)
        elif sections is None or not isinstance(value, dict) or not set(value) <= set(sections):
            return None
        else:
            substituted[top] = {
                section: _substitute(top, section, table, known, notes)
                for section, table in value.items()
            }
    protocols = [substituted[top] for top in _TABLES if top in substituted]
    if any(table is None for tables in protocols for table in tables.values()):
        return None
    try:
        config = DynamicConfig.model_validate(substituted)
    except ValidationError:
        return None
    return None if invalid_names(config) else config


def _substitute(
    protocol: str, section: str, table: Any, known: Known, notes: Notes
) -> dict[str, Any] | None:
    """The table with known objects in place of their raw data and the others normalised
    (None: not a mapping of string names, left to the usual path)."""
    if not isinstance(table, dict):
        return None
    item = _ITEMS[protocol, section]
    result: dict[str, Any] = {}
    for name, value in table.items():
        if not isinstance(name, str):
            return None
        entry = known.get((protocol, section, name))
        if entry is not None and entry[0] == value:
            result[name] = entry[1]
        else:
            notes.stack[:] = [protocol, section, name]
            result[name] = normalize(item, value, notes)
    return result


def _remember(data: dict[str, Any], config: DynamicConfig) -> Known:
    """The raw data and model of every object of a file read from canonical keys."""
    known: Known = {}
    for protocol, sections in _TABLES.items():
        spec = data.get(protocol)
        if not isinstance(spec, dict):
            continue
        models = getattr(config, protocol)
        for section in sections:
            table = spec.get(section)
            if not isinstance(table, dict):
                continue
            objects = getattr(models, _ATTRIBUTES[section])
            for name, value in table.items():
                model = objects.get(name) if isinstance(name, str) else None
                if model is not None:
                    known[protocol, section, name] = (value, model)
    return known


_ATTRIBUTES = {
    "routers": "routers",
    "services": "services",
    "middlewares": "middlewares",
    "serversTransports": "servers_transports",
}
_PROTOCOL_MODELS: dict[str, type[BaseModel]] = {
    "http": HTTPConfig,
    "tcp": TCPConfig,
    "udp": UDPConfig,
}
# (protocol, section) → the model of one object of that table.
_ITEMS: dict[tuple[str, str], Any] = {
    (protocol, section): shape_of(
        _PROTOCOL_MODELS[protocol].model_fields[_ATTRIBUTES[section]].annotation
    ).item
    for protocol, sections in _TABLES.items()
    for section in sections
}


# ---------------------------------------------------------------- static configuration


def default_search_dirs(environ: Mapping[str, str]) -> list[str]:
    """Traefik's search places, with proxynow's name: /etc/proxynow, XDG, ~/.config, ."""
    dirs = ["/etc/proxynow"]
    if environ.get("XDG_CONFIG_HOME"):
        dirs.append(environ["XDG_CONFIG_HOME"])
    if environ.get("HOME"):
        dirs.append(os.path.join(environ["HOME"], ".config"))
    dirs.append(".")
    return dirs


def find_config_file(dirs: Iterable[str]) -> str | None:
    """The first proxynow.yml|yaml|toml in `dirs`, in order."""
    for directory in dirs:
        for name in CONFIG_NAMES:
            candidate = os.path.join(directory, name)
            if os.path.isfile(candidate):
                return candidate
    return None


def load_static(
    flags: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    config_file: str | None = None,
    search_dirs: Iterable[str] | None = None,
) -> LoadedStatic:
    """Build the static configuration from a file, the environment and flags.

    `flags` are Traefik-style `--entryPoints.web.address=:80` arguments; `environ` defaults
    to `os.environ`. Without `config_file`, the usual places are searched.
    """
    env = os.environ if environ is None else environ
    if config_file is None:
        config_file = find_config_file(search_dirs or default_search_dirs(env))
    raw_file = read_file(config_file) if config_file is not None else None
    flag_data, flag_issues = parse_flags(StaticConfig, flags)
    env_data, env_issues = parse_environment(StaticConfig, env)
    issues = [ConfigIssue(p, m, FLAGS_SOURCE) for p, m in flag_issues]
    issues += [ConfigIssue(p, m, ENV_SOURCE) for p, m in env_issues]
    if issues:
        raise ConfigError(issues)
    file_data, refused, warnings = _static_file_data(raw_file)
    merged = deep_merge(deep_merge(file_data, env_data), flag_data)
    try:
        config = StaticConfig.model_validate(merged)
    except ValidationError as exc:
        issues = [*refused, *_static_issues(exc, merged, raw_file, env_data, flag_data), *warnings]
        omitted = exc.error_count() - min(exc.error_count(), MAX_ISSUES)
        where = raw_file.path if raw_file is not None else None
        raise ConfigError(issues, {where: omitted} if omitted else None) from None
    if refused:
        raise ConfigError([*refused, *warnings])
    empty = raw_file is None and not flag_data and not env_data
    return LoadedStatic(config, config_file, empty, tuple(warnings))


_STATIC_SECTIONS = tuple(
    str(info.alias or name) for name, info in StaticConfig.model_fields.items()
)


def _static_file_data(
    raw_file: RawFile | None,
) -> tuple[dict[str, Any], list[ConfigIssue], list[ConfigIssue]]:
    """The file's data normalised, without what compat.py leaves out; the options refused
    (errors) and the warnings."""
    if raw_file is None:
        return {}, [], []
    data, found = unsupported_options(raw_file.data)
    data, strays = _without_strays(data, StaticConfig)
    notes = Notes()
    normalized = normalize(StaticConfig, data, notes)
    where = raw_file.path, raw_file.positions
    warnings = _warnings(strays, notes, *where, sections=_STATIC_SECTIONS)
    refused: list[ConfigIssue] = []
    for item in found:
        severity: Severity = "error" if item.error else "warning"
        issue = located(item.loc, item.message, *where, severity=severity)
        (refused if item.error else warnings).append(issue)
    return normalized, refused, warnings


def _static_issues(
    exc: ValidationError,
    merged: dict[str, Any],
    raw_file: RawFile | None,
    env_data: dict[str, Any],
    flag_data: dict[str, Any],
) -> list[ConfigIssue]:
    """Attribute each issue to the source that set the value (flags win, like the merge);
    the first `MAX_ISSUES` only."""
    merged_issues = issues_from_validation(exc, StaticConfig, merged, limit=MAX_ISSUES)
    # The same errors in the same order, spelt and positioned as in the file.
    file_issues = (
        issues_from_validation(
            exc,
            StaticConfig,
            raw_file.data,
            file=raw_file.path,
            positions=raw_file.positions,
            limit=MAX_ISSUES,
        )
        if raw_file is not None
        else merged_issues
    )
    issues = []
    for issue, in_file in zip(merged_issues, file_issues, strict=True):
        if _has_path(flag_data, issue.path):
            issues.append(ConfigIssue(issue.path, issue.message, FLAGS_SOURCE))
        elif _has_path(env_data, issue.path):
            issues.append(ConfigIssue(issue.path, issue.message, ENV_SOURCE))
        else:
            issues.append(in_file)
    return _dedupe(issues)


def _dedupe(issues: list[ConfigIssue]) -> list[ConfigIssue]:
    return list(dict.fromkeys(issues))


def _has_path(data: dict[str, Any], dotted: str) -> bool:
    node: Any = data
    for part in re.split(r"\.|(?=\[)", dotted):
        if not part:
            continue
        if part.startswith("[") and isinstance(node, list):
            index = int(part[1:-1])
            if index >= len(node):
                return False
            node = node[index]
            continue
        if not isinstance(node, dict):
            return False
        key = next((k for k in node if str(k).lower() == part.lower()), None)
        if key is None:
            return False
        node = node[key]
    return True


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`, merging nested mappings; `over`'s scalars and lists win."""
    result = dict(base)
    for key, value in over.items():
        previous = result.get(key)
        if isinstance(previous, dict) and isinstance(value, dict):
            result[key] = deep_merge(previous, value)
        else:
            result[key] = value
    return result
