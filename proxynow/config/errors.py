"""Configuration errors as the user should read them.

A `ConfigError` carries every `ConfigIssue` found (never only the first), each rendered as
`file:line:column: http.routers.api.rule: message` (`file:line:column: warning: ...` for a
warning: something that serves, but not as written). `issues_from_validation` turns a
pydantic `ValidationError` into issues: the path uses the user's own key names, unknown
keys get a "did you mean" suggestion, and the position comes from a map of key paths to
(line, column) built by the loader from the YAML or TOML text.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from proxynow.config.keys import allowed_keys, struct_at
from proxynow.config.middlewares import Middleware, TCPMiddleware

__all__ = [
    "MAX_ISSUES",
    "ConfigError",
    "ConfigIssue",
    "Loc",
    "Positions",
    "Severity",
    "format_path",
    "issues_from_validation",
    "located",
    "root_key_message",
    "suggest",
    "unknown_key_message",
]

Loc = tuple[str | int, ...]
Positions = Mapping[Loc, tuple[int, int]]
Severity = Literal["error", "warning"]

MAX_ISSUES = 100
"""Issues built per file (or per static configuration); the rest are only counted. A
person reads the first ones, fixes them and checks again; the thousandth line of the same
mistake helps nobody, and a junk file must not become a million objects and lines."""


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in the configuration, with where it is when that is known.

    An error makes the configuration (or the object) invalid; a warning is something that
    is served, but not as written (a middleware type not applied yet, an unknown
    entrypoint among known ones).
    """

    path: str
    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    severity: Severity = "error"

    def __str__(self) -> str:
        where = [str(part) for part in (self.file, self.line, self.column) if part is not None]
        prefix = ":".join(where)
        body = f"{self.path}: {self.message}" if self.path else self.message
        if self.severity == "warning":
            body = f"warning: {body}"
        return f"{prefix}: {body}" if prefix else body


class ConfigError(Exception):
    """The configuration is invalid; `issues` lists every problem found, but for the
    errors past `MAX_ISSUES`, counted by file in `omitted`."""

    def __init__(
        self, issues: Sequence[ConfigIssue], omitted: Mapping[str | None, int] | None = None
    ) -> None:
        self.issues = list(issues)
        self.omitted = dict(omitted or {})
        super().__init__("\n".join(str(issue) for issue in self.issues))


def format_path(loc: Loc) -> str:
    """`("http", "services", "s", "servers", 0, "url")` → `http.services.s.servers[0].url`."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def suggest(word: str, choices: Sequence[str]) -> str | None:
    """The closest of `choices` to `word` (case-insensitive), if any is close enough."""
    lowered = {choice.lower(): choice for choice in choices}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[close[0]] if close else None


def _user_loc(raw: Any, loc: Loc) -> Loc:
    """Spell `loc` (model keys) with the keys the user actually wrote in `raw`."""
    result: list[str | int] = []
    node = raw
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part not in node:
            part = next((k for k in node if isinstance(k, str) and k.lower() == part.lower()), part)
        result.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    return tuple(result)


def _position(positions: Positions, loc: Loc) -> tuple[int, int] | None:
    """Position of the deepest prefix of `loc` that the file has."""
    for end in range(len(loc), -1, -1):
        found = positions.get(loc[:end])
        if found is not None:
            return found
    return None


def located(
    loc: Loc,
    message: str,
    file: str | None = None,
    positions: Positions | None = None,
    severity: Severity = "error",
) -> ConfigIssue:
    """The issue at `loc` (the user's spelling), positioned at its deepest known prefix."""
    position = _position(positions, loc) if positions is not None else None
    line, column = position if position is not None else (None, None)
    return ConfigIssue(format_path(loc), message, file, line, column, severity)


def _clean_loc(loc: Sequence[str | int]) -> Loc:
    # pydantic appends "[key]" to dict-key errors; the key itself is the useful part.
    return tuple(part for part in loc if part != "[key]")


_TYPE_NAMES = {
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean (true or false)",
    "string": "a string",
    "list": "a list",
    "dict": "a mapping",
    "model": "a mapping",
}


def unknown_key_message(parent: type[BaseModel] | None, key: object) -> str:
    """`unknown key 'rulee' (did you mean 'rule'?)` for `key` in a `parent` mapping."""
    choices = allowed_keys(parent) if parent is not None else []
    what = "middleware type" if parent in (Middleware, TCPMiddleware) else "key"
    close = suggest(str(key), choices)
    hint = f" (did you mean {close!r}?)" if close else ""
    return f"unknown {what} {str(key)!r}{hint}"


def root_key_message(key: object, sections: Sequence[str] = ("http", "tcp", "udp", "tls")) -> str:
    """A key at the root of a dynamic (or, with `sections`, static) file that is not a
    section: Traefik ignores it (files carry `version:` or YAML anchors there)."""
    close = suggest(str(key), sections)
    hint = f" (did you mean {close!r}?)" if close else ""
    return f"unknown key {str(key)!r} at the root of the file{hint}; ignored, as Traefik does"


def _unknown_key(model: type[BaseModel], loc: Loc) -> str:
    return unknown_key_message(struct_at(model, loc[:-1]), loc[-1])


def _message(model: type[BaseModel], error: ErrorDetails, loc: Loc) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return _unknown_key(model, loc)
    if kind == "missing":
        return f"missing required key {loc[-1]!r}"
    if kind == "value_error":
        return error["msg"].removeprefix("Value error, ")
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return f"expected {expected}, got {error['input']!r}"
    prefix = kind.split("_", 1)[0]
    if prefix in _TYPE_NAMES and kind.endswith(("_type", "_parsing")):
        return f"expected {_TYPE_NAMES[prefix]}, got {error['input']!r}"
    return f"{error['msg']} (got {error['input']!r})"


def issues_from_validation(
    exc: ValidationError,
    model: type[BaseModel],
    raw: Any,
    *,
    file: str | None = None,
    positions: Positions | None = None,
    prefix: Loc = (),
    limit: int | None = None,
) -> list[ConfigIssue]:
    """Turn a pydantic error on `model.model_validate(raw)` into issues the user can act on.

    `prefix` is where `raw` is in the file (user spelling), for the paths and positions of
    one object validated on its own; only the first `limit` errors are turned into issues.
    """
    issues: list[ConfigIssue] = []
    for error in exc.errors()[:limit]:
        loc = _clean_loc(error["loc"])
        message = _message(model, error, loc)
        where_loc = loc[:-1] if error["type"] == "missing" else loc
        user_loc = (*prefix, *_user_loc(raw, where_loc))
        issues.append(located(user_loc, message, file, positions))
    return issues
