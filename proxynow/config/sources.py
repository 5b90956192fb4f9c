"""Static configuration from CLI flags and `PROXYNOW_*` environment variables.

Both use Traefik's forms: `--entryPoints.web.address=:80`, `--providers.docker` alone for
"enabled with defaults", `--tls.domains[0].main=x`; `PROXYNOW_ENTRYPOINTS_WEB_ADDRESS=:80`,
`PROXYNOW_PROVIDERS_DOCKER=true`. A path is resolved against the model the way
`keys.normalize` does (struct keys case-insensitive, map keys kept; the environment cannot
carry case, so its map keys are lowercase). Values stay strings for pydantic to convert,
except that a list of scalars is split on commas and a struct given `true` becomes `{}`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from proxynow.config.keys import Shape, field_key, shape_of

__all__ = ["ENV_PREFIX", "parse_environment", "parse_flags", "set_path"]

ENV_PREFIX = "PROXYNOW_"
_INDEXED = re.compile(r"^(.+?)\[(\d+)\]$")

Issue = tuple[str, str]


def parse_flags(model: type[BaseModel], args: Sequence[str]) -> tuple[dict[str, Any], list[Issue]]:
    """Traefik-style `--a.b.c=value` flags → raw nested data, plus malformed-flag issues."""
    data: dict[str, Any] = {}
    issues: list[Issue] = []
    index = 0
    while index < len(args):
        token = args[index]
        index += 1
        if not token.startswith("--") or len(token) == 2:
            issues.append(("", f"unexpected argument {token!r} (flags look like --a.b=value)"))
            continue
        name, equals, value = token[2:].partition("=")
        flag_value: str | None = value if equals else None
        if flag_value is None and index < len(args) and not args[index].startswith("-"):
            flag_value = args[index]
            index += 1
        segments = _flag_segments(name)
        if not all(segments):
            issues.append((name, "empty segment in flag name"))
            continue
        set_path(model, data, segments, flag_value, lower_map_keys=False)
    return _lists(data), issues


def _flag_segments(name: str) -> list[str]:
    segments: list[str] = []
    for part in name.split("."):
        match = _INDEXED.match(part)
        segments.extend([match[1], match[2]] if match else [part])
    return segments


def parse_environment(
    model: type[BaseModel], environ: Mapping[str, str]
) -> tuple[dict[str, Any], list[Issue]]:
    """`PROXYNOW_A_B_C=value` variables → raw nested data.

    Variables whose first segment is not a top-level key are ignored: the prefix is also
    used by proxynow's own process plumbing and by users for unrelated settings.
    """
    data: dict[str, Any] = {}
    for key in sorted(environ):
        if not key.upper().startswith(ENV_PREFIX):
            continue
        segments = key[len(ENV_PREFIX) :].lower().split("_")
        if not all(segments) or field_key(model, segments[0]) is None:
            continue
        set_path(model, data, segments, environ[key], lower_map_keys=True)
    return _lists(data), []


def set_path(
    model: type[BaseModel],
    data: dict[str, Any],
    segments: Sequence[str],
    value: str | None,
    *,
    lower_map_keys: bool,
) -> None:
    """Store `value` at the model path `segments` inside `data` (created as needed)."""
    shape: Shape | None = Shape("struct", model=model)
    node: dict[Any, Any] = data
    for position, segment in enumerate(segments):
        key, shape = _step(shape, segment, lower_map_keys)
        if position == len(segments) - 1:
            node[key] = _convert(shape, value, node.get(key))
            return
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child


def _step(shape: Shape | None, segment: str, lower_map_keys: bool) -> tuple[Any, Shape | None]:
    """The key to store `segment` under, and the shape of what lies below it."""
    if shape is None:
        return segment, None
    if shape.kind == "struct" and shape.model is not None:
        found = field_key(shape.model, segment)
        return (found[0], shape_of(found[1])) if found else (segment, None)
    if shape.kind == "map":
        return (segment.lower() if lower_map_keys else segment), shape_of(shape.item)
    if shape.kind == "list" and segment.isdigit():
        return int(segment), shape_of(shape.item)
    return segment, None


def _convert(shape: Shape | None, value: str | None, previous: Any) -> Any:
    kind = shape.kind if shape is not None else "scalar"
    if kind in ("struct", "map"):
        if value is None or value.strip().lower() == "true":
            return previous if isinstance(previous, dict) else {}
        if value.strip().lower() == "false":
            return None
        return value
    if kind == "list" and value is not None and shape is not None:
        if shape_of(shape.item).kind == "scalar":
            return [item.strip() for item in value.split(",") if item.strip()]
        return value
    return "true" if value is None else value


def _lists(node: Any) -> Any:
    """Turn the `{0: ..., 1: ...}` mappings made by indexed paths into lists."""
    if isinstance(node, dict):
        converted = {key: _lists(value) for key, value in node.items()}
        if converted and all(isinstance(key, int) for key in converted):
            return [converted[key] for key in sorted(converted)]
        return converted
    return node
