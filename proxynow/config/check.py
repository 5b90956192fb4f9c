"""`proxynow check`: every problem of a static configuration and its dynamic files.

Each dynamic file named by `providers.file` is validated on its own (so one broken file
does not hide another's errors); the valid ones are then merged as the file provider
merges them and handed to the aggregator, whose per-object errors (bad rules, missing
services and middlewares) are reported at the position of the object in its file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from proxynow.config.dynamic import DynamicConfig
from proxynow.config.errors import ConfigError, ConfigIssue, Loc, Positions
from proxynow.config.loader import RawFile, deep_merge, read_file, validate_dynamic
from proxynow.config.static import FileProvider, StaticConfig

__all__ = ["DYNAMIC_SUFFIXES", "check_dynamic", "dynamic_files"]

DYNAMIC_SUFFIXES = (".yml", ".yaml", ".toml")


@dataclass(frozen=True, slots=True)
class _Origin:
    file: str
    positions: Positions
    loc: Loc


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


def check_dynamic(static: StaticConfig) -> list[ConfigIssue]:
    """All issues of the dynamic files of `static.providers.file` (none without it)."""
    provider = static.providers.file
    if provider is None:
        return []
    if provider.directory and not os.path.isdir(provider.directory):
        return [ConfigIssue("providers.file.directory", f"not a directory: {provider.directory}")]
    issues: list[ConfigIssue] = []
    valid: list[RawFile] = []
    for path in dynamic_files(provider):
        try:
            raw = read_file(path)
            validate_dynamic(raw.data, file=raw.path, positions=raw.positions)
        except ConfigError as exc:
            issues.extend(exc.issues)
        else:
            valid.append(raw)
    if valid:
        issues.extend(_object_issues(static, valid))
    return issues


def _object_issues(static: StaticConfig, files: list[RawFile]) -> list[ConfigIssue]:
    merged: dict[str, Any] = {}
    for raw in files:
        merged = deep_merge(merged, raw.data)
    try:
        config = validate_dynamic(merged)
    except ConfigError as exc:
        return exc.issues
    origins = dict(_origins(files))
    issues = []
    for key, errors in _aggregator_errors(static, config):
        origin = origins.get(key.lower())
        for message in errors:
            issues.append(_issue(key, message, origin))
    return issues


def _issue(key: str, message: str, origin: _Origin | None) -> ConfigIssue:
    if origin is None:
        return ConfigIssue(key, message)
    loc, message = _field_of(origin, message)
    line, column = origin.positions.get(loc, (None, None))
    path = ".".join(str(part) for part in loc)
    return ConfigIssue(path, message, origin.file, line, column)


def _field_of(origin: _Origin, message: str) -> tuple[Loc, str]:
    """Point `"rule: unexpected ')'"` at the object's `rule` key rather than the object."""
    field, sep, rest = message.partition(": ")
    if sep:
        loc = (*origin.loc, field)
        if loc in origin.positions:
            return loc, rest
    return origin.loc, message


def _origins(files: list[RawFile]) -> Iterator[tuple[str, _Origin]]:
    """`"http.routers.api"` (lowercased) → where that object is defined."""
    for raw in files:
        for protocol, sections in raw.data.items():
            if not isinstance(sections, dict):
                continue
            for section, objects in sections.items():
                if not isinstance(objects, dict):
                    continue
                for name in objects:
                    key = f"{protocol}.{section}.{name}".lower()
                    yield key, _Origin(raw.path, raw.positions, (protocol, section, name))


def _aggregator_errors(
    static: StaticConfig, config: DynamicConfig
) -> list[tuple[str, tuple[str, ...]]]:
    """Per-object errors as `("http.routers.api", errors)`, from the aggregator."""
    from proxynow.aggregator import EntryPoints, build_snapshot
    from proxynow.providers.base import ProviderUpdate

    entry_points = EntryPoints.from_flags(
        {name: ep.as_default for name, ep in static.entry_points.items()}
    )
    update = ProviderUpdate("file", config)
    snapshot = build_snapshot(1, [update], entry_points, _internal_services(static))
    found = []
    for key, status in sorted(snapshot.statuses.items()):
        if status.errors and key.endswith("@file"):
            found.append((key.removesuffix("@file"), status.errors))
    return found


def _internal_services(static: StaticConfig) -> frozenset[str]:
    names = {"noop"}
    if static.api is not None:
        names |= {"api", "dashboard"}
    if static.ping is not None:
        names.add("ping")
    if static.metrics is not None and static.metrics.prometheus is not None:
        names.add("prometheus")
    return frozenset(names)
