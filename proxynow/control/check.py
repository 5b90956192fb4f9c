"""`proxynow check`: every problem of a static configuration and its dynamic files.

Each dynamic file named by `providers.file` is read and validated object by object
(config/objects.py), so that one invalid router hides neither the other mistakes of its file nor
those of the other files. The valid objects of every file are merged as the file provider
merges them and judged by the aggregator's checks (bad rules, missing or disabled
services and middlewares, types not applied yet), whose findings are reported at the
position of the object in its file: an error for what disables the object, a warning for
what serves but not as written. An object that is itself invalid stands in the merge as an
inert placeholder, so that what uses it reads "service web@file is disabled: ..." rather
than "does not exist". Then the hints (config/hints.py): what Traefik serves and only logs at
run time, if at all (an undefined certificate resolver, a URL in `Host()`, a v2
placeholder), as warnings saying what to write instead.

`report` turns the issues into the lines `check` prints: errors, then warnings, at most
`MAX_ISSUES` per file followed by one "... and N more" line, then the totals.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from proxynow.api.internal import effective_static, internal_services, router_entry_points
from proxynow.config.dynamic import DynamicConfig
from proxynow.config.errors import (
    MAX_ISSUES,
    ConfigError,
    ConfigIssue,
    Loc,
    Positions,
    Severity,
    located,
)
from proxynow.config.hints import cert_resolver_hint, rule_hints
from proxynow.config.keys import shape_of
from proxynow.config.loader import read_dynamic_file
from proxynow.config.objects import (
    DynamicObjects,
    ObjectKey,
    validate_dynamic_objects,
)
from proxynow.config.static import FileProvider, StaticConfig
from proxynow.control.checks import check_all
from proxynow.providers.base import ProviderUpdate
from proxynow.providers.file import merge_files
from proxynow.snapshot import status_key
from proxynow.snapshot.merge import BuildCache, Merge, collect, collect_tls

__all__ = [
    "DYNAMIC_SUFFIXES",
    "INVALID_OBJECT",
    "CheckResult",
    "Report",
    "check_dynamic",
    "dynamic_files",
    "report",
]

DYNAMIC_SUFFIXES = (".yml", ".yaml", ".toml")
PROVIDER = "file"
INVALID_OBJECT = "its definition is invalid (see the errors reported on it)"

# Inert stand-ins for invalid objects that others reference (routers are referenced by
# nothing): valid, applied, never served, since the aggregator disables them.
_PLACEHOLDERS: dict[tuple[str, str], dict[str, Any]] = {
    ("http", "services"): {"loadBalancer": {}},
    ("tcp", "services"): {"loadBalancer": {}},
    ("udp", "services"): {"loadBalancer": {}},
    ("http", "middlewares"): {"chain": {"middlewares": []}},
    ("tcp", "middlewares"): {"ipAllowList": {"sourceRange": []}},
    ("http", "serversTransports"): {},
    ("tcp", "serversTransports"): {},
    # Routers naming them are judged with the defaults; the options carry the errors.
    ("tls", "options"): {},
}


@dataclass(frozen=True, slots=True)
class _Origin:
    file: str
    positions: Positions
    loc: Loc


Omitted = Mapping[tuple[str | None, Severity], int]
"""How many issues were counted but not built, by file and severity."""


@dataclass
class CheckResult:
    """The issues found (at most `MAX_ISSUES` per file), and how many more were counted."""

    issues: list[ConfigIssue] = field(default_factory=list)
    omitted: Counter[tuple[str | None, Severity]] = field(default_factory=Counter)
    built: Counter[str | None] = field(default_factory=Counter)  # issues kept, by file

    def add(self, issue: ConfigIssue) -> None:
        """Keep `issue`, or only count it when its file has `MAX_ISSUES` already."""
        if self.built[issue.file] < MAX_ISSUES:
            self.issues.append(issue)
            self.built[issue.file] += 1
        else:
            self.omitted[issue.file, issue.severity] += 1


def dynamic_files(provider: FileProvider) -> list[str]:
    """The files the file provider reads: `filename`, or the directory's files (recursive)."""
    if provider.filename:
        return [provider.filename]
    found: list[str] = []
    for root, dirs, files in os.walk(provider.directory):
        dirs.sort()
        found.extend(os.path.join(root, name) for name in sorted(files) if _is_config(name))
    return found


def _is_config(name: str) -> bool:
    return name.endswith(DYNAMIC_SUFFIXES) and not name.startswith(".")


def check_dynamic(static: StaticConfig) -> CheckResult:
    """All issues of the dynamic files of `static.providers.file` (none without it)."""
    result = CheckResult()
    provider = static.providers.file
    if provider is None:
        return result
    if provider.directory and not os.path.isdir(provider.directory):
        issue = ConfigIssue("providers.file.directory", f"not a directory: {provider.directory}")
        return CheckResult([issue])
    files: dict[str, tuple[DynamicObjects, Positions]] = {}
    for path in dynamic_files(provider):
        try:
            raw = read_dynamic_file(path, eager_positions=True)
        except ConfigError as exc:
            result.issues.extend(exc.issues)
            continue
        objects = validate_dynamic_objects(raw.data, file=raw.path, positions=raw.positions)
        for issue in objects.issues:
            result.add(issue)
        result.omitted[raw.path, "error"] += objects.omitted
        files[raw.path] = (objects, raw.positions)
    _object_issues(static, files, result)
    for path, (objects, positions) in files.items():
        for issue in _hints(static, objects, path, positions):
            result.add(issue)
    return result


def _hints(
    static: StaticConfig, objects: DynamicObjects, file: str, positions: Positions
) -> Iterator[ConfigIssue]:
    """The hints (config/hints.py) on the valid routers of one file, as warnings."""
    resolvers = static.certificates_resolvers
    for protocol in ("http", "tcp"):
        routers = getattr(objects.config, protocol).routers
        for name, router in routers.items():
            loc = objects.where.get((protocol, "routers", name), (protocol, "routers", name))
            for hint in rule_hints(router.rule, protocol):
                yield located((*loc, "rule"), hint, file, positions, "warning")
            tls = router.tls
            missing = cert_resolver_hint(tls.cert_resolver, resolvers) if tls else None
            if missing:
                yield located((*loc, "tls", "certResolver"), missing, file, positions, "warning")


def _object_issues(
    static: StaticConfig, files: Mapping[str, tuple[DynamicObjects, Positions]], result: CheckResult
) -> None:
    """The aggregator's findings on the merged valid objects of every file."""
    merged, object_errors, tls_errors = merge_files(
        {path: objects.config for path, (objects, _) in files.items()}
    )
    invalid = {key for objects, _ in files.values() for key in objects.invalid}
    config, stand_ins = _with_placeholders(merged, invalid)
    disabling = {
        f"{protocol}.{section}.{name}": (INVALID_OBJECT,) for protocol, section, name in stand_ins
    }
    skipped = {
        status_key(protocol, section, f"{name}@{PROVIDER}") for protocol, section, name in stand_ins
    }
    origins = _origins(files)
    for message in tls_errors:
        result.add(ConfigIssue("", message))
    for key, critical, message in _problems(static, config, {**object_errors, **disabling}):
        if key in skipped:
            continue  # a placeholder's own errors are listed, with positions
        origin = origins.get(key)
        if origin is not None and result.built[origin.file] >= MAX_ISSUES:
            result.omitted[origin.file, "error" if critical else "warning"] += 1
        else:  # (`located` and "did you mean" are not worked out for issues not shown)
            result.add(_issue(key, message, origin, critical))


def _origins(files: Mapping[str, tuple[DynamicObjects, Positions]]) -> dict[str, _Origin]:
    """Status key (`http.routers.api@file`) → where the object the merge keeps is: its
    first valid definition, else its first invalid one."""
    origins: dict[str, _Origin] = {}
    for valid in (True, False):
        for path, (objects, positions) in files.items():
            for key, loc in objects.where.items():
                protocol, section, name = key
                if (key in objects.invalid) != valid and isinstance(name, str):
                    status = status_key(protocol, section, f"{name}@{PROVIDER}")
                    origins.setdefault(status, _Origin(path, positions, loc))
    return origins


def _with_placeholders(
    config: DynamicConfig, invalid: Iterable[ObjectKey]
) -> tuple[DynamicConfig, list[tuple[str, str, str]]]:
    """`config` with a placeholder for each invalid object that others may reference and
    that no file defines validly, and the placeholders that have a status (not TLS)."""
    wanted: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for protocol, section, name in invalid:
        body = _PLACEHOLDERS.get((protocol, section))
        if body is not None and isinstance(name, str) and "@" not in name:
            wanted.setdefault((protocol, section), {})[name] = body
    parts: dict[str, Any] = {}
    added: list[tuple[str, str, str]] = []
    for (protocol, section), bodies in sorted(wanted.items()):
        part = parts.get(protocol, getattr(config, protocol))
        attribute, item = _table_of(type(part), section)
        table = getattr(part, attribute)
        new = {
            name: item.model_validate(body) for name, body in bodies.items() if name not in table
        }
        parts[protocol] = part.model_copy(update={attribute: {**table, **new}})
        if protocol != "tls":  # TLS options have no status; their own errors are listed
            added.extend((protocol, section, name) for name in new)
    return config.model_copy(update=parts), added


def _table_of(model: type[BaseModel], section: str) -> tuple[str, type[BaseModel]]:
    """The attribute of `model` holding the table `section`, and the model of its items."""
    for attribute, info in model.model_fields.items():
        if (info.alias or attribute) == section:
            item = shape_of(shape_of(info.annotation).item).model
            assert item is not None
            return attribute, item
    raise KeyError(section)


def _problems(
    static: StaticConfig, config: DynamicConfig, object_errors: Mapping[str, tuple[str, ...]]
) -> list[tuple[str, bool, str]]:
    """(status key, critical, message) of every problem the aggregator finds in `config`.

    The steps of `aggregator.build_snapshot` up to its checks: a snapshot's statuses keep
    the messages but not which of them disable the object, and `check` needs that to tell
    errors from warnings.
    """
    # The entrypoints and internal services `run` gives routers (proxynow/api/internal.py),
    # so that `check` and `run` agree on what a router may name.
    static = effective_static(static)
    merge = Merge(router_entry_points(static), internal_services(static), BuildCache())
    update = ProviderUpdate(PROVIDER, config, object_errors)
    collect(merge, update)
    collect_tls(merge, [update])
    check_all(merge)
    return [
        (key, critical, message)
        for key, problems in sorted(merge.problems.items())
        for critical, message in problems
    ]


def _issue(key: str, message: str, origin: _Origin | None, critical: bool) -> ConfigIssue:
    severity: Severity = "error" if critical else "warning"
    if origin is None:
        return ConfigIssue(key, message, severity=severity)
    loc, message = _field_of(origin, message)
    return located(loc, message, origin.file, origin.positions, severity)


def _field_of(origin: _Origin, message: str) -> tuple[Loc, str]:
    """Point `"rule: unexpected ')'"` at the object's `rule` key rather than the object."""
    field, sep, rest = message.partition(": ")
    if sep:
        loc = (*origin.loc, field)
        if loc in origin.positions:
            return loc, rest
    return origin.loc, message


# ---------------------------------------------------------------- what `check` prints


@dataclass(frozen=True, slots=True)
class Report:
    """The lines `check` prints for a list of issues, and the totals."""

    lines: list[str]
    errors: int
    warnings: int

    @property
    def summary(self) -> str:
        return f"{_count(self.errors, 'error')}, {_count(self.warnings, 'warning')}"


def report(
    issues: Sequence[ConfigIssue],
    omitted: Omitted | None = None,
    limit: int = MAX_ISSUES,
) -> Report:
    """Errors, then warnings, each sorted by file and position; at most `limit` issues
    per file (its errors first), the rest of the file counted in one "... and N more"
    line. `omitted` adds the issues counted but never built."""
    omitted = omitted or {}
    by_file: dict[str | None, list[ConfigIssue]] = {}
    for issue in issues:
        by_file.setdefault(issue.file, []).append(issue)
    shown: list[ConfigIssue] = []
    more: dict[str | None, Counter[str]] = {}
    for file in sorted({*by_file, *(file for file, _ in omitted)}, key=lambda name: name or ""):
        group = sorted(by_file.get(file, []), key=_order)
        shown.extend(group[:limit])
        rest = Counter[str](issue.severity for issue in group[limit:])
        rest["error"] += omitted.get((file, "error"), 0)
        rest["warning"] += omitted.get((file, "warning"), 0)
        if rest.total():
            more[file] = rest
    lines = [str(issue) for issue in sorted(shown, key=_grouped)]
    # Each "... and N more" line closes the group of its file's first omitted issue.
    errors = sum(issue.severity == "error" for issue in shown)
    lines[errors:errors] = [_more(file, rest) for file, rest in more.items() if rest["error"]]
    lines += [_more(file, rest) for file, rest in more.items() if not rest["error"]]
    total = Counter[str](issue.severity for issue in issues)
    for (_, severity), count in omitted.items():
        total[severity] += count
    return Report(lines, total["error"], total["warning"])


def _grouped(issue: ConfigIssue) -> tuple[bool, str, int, int]:
    return (issue.severity != "error", *_where(issue))


def _where(issue: ConfigIssue) -> tuple[str, int, int]:
    return (issue.file or "", issue.line or 0, issue.column or 0)


def _order(issue: ConfigIssue) -> tuple[bool, int, int]:
    return (issue.severity != "error", issue.line or 0, issue.column or 0)


def _more(file: str | None, rest: Counter[str]) -> str:
    parts = [_count(rest[kind], f"more {kind}") for kind in ("error", "warning") if rest[kind]]
    where = f" in {file}" if file else ""
    return f"... and {' and '.join(parts)}{where}"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' if number != 1 else ''}"
