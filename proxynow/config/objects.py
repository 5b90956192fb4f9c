"""A dynamic configuration validated object by object, every invalid one listed.

`validate_dynamic` (loader.py) validates a file as one model: one mistake anywhere makes
the whole file invalid, which is how the file provider treats a file today (it keeps the
file's last good content). `validate_dynamic_objects` validates each router, service,
middleware and servers transport, each TLS certificate, option and store on its own: an
invalid object is reported with its path and position and left out of the configuration,
the others are kept, so that `proxynow check` lists every mistake of a file at once and
still hands the valid objects to the aggregator's checks. The structure around the
objects (unknown section keys, a table that is not a mapping) is checked as it goes; the
messages are those of `validate_dynamic`. Keys at the root of the file that are not
sections are warnings (Traefik ignores them), and so are deprecated keys (compat.py).

A junk file must not cost more than its size: the walk is linear, and past `max_issues`
issues are only counted (`omitted`), never built, so a file with a million mistakes makes
a hundred `ConfigIssue`s and a number.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from proxynow.config.dynamic import DynamicConfig
from proxynow.config.errors import (
    MAX_ISSUES,
    ConfigIssue,
    Loc,
    Positions,
    Severity,
    issues_from_validation,
    located,
    root_key_message,
    unknown_key_message,
)
from proxynow.config.keys import Notes, field_key, normalize, shape_of

__all__ = ["DynamicObjects", "ObjectKey", "validate_dynamic_objects"]

ObjectKey = tuple[str, str, str | int]
"""An object as the schema spells it: `("http", "routers", "api")`, `("tls", "certificates", 0)`."""


@dataclass(frozen=True, slots=True)
class DynamicObjects:
    """What `validate_dynamic_objects` found in one file.

    `config` holds every valid object; `issues` the first `max_issues` problems and
    `omitted` how many more there were; `invalid` the objects left out because of them;
    `where` is the key path of every object, valid or not, as spelt in the file.
    """

    config: DynamicConfig
    issues: list[ConfigIssue]
    omitted: int
    invalid: frozenset[ObjectKey]
    where: Mapping[ObjectKey, Loc]


@dataclass
class _Walk:
    file: str | None
    positions: Positions | None
    max_issues: int
    issues: list[ConfigIssue] = field(default_factory=list)
    omitted: int = 0
    invalid: set[ObjectKey] = field(default_factory=set)
    where: dict[ObjectKey, Loc] = field(default_factory=dict)

    @property
    def full(self) -> bool:
        return len(self.issues) >= self.max_issues

    def add(self, loc: Loc, message: str, severity: Severity = "error") -> None:
        if self.full:
            self.omitted += 1
        else:
            self.issues.append(located(loc, message, self.file, self.positions, severity))

    def validate(self, model: type[BaseModel], raw: Any, loc: Loc) -> BaseModel | None:
        """`raw` (at `loc`) as a `model`, or None with its issues recorded."""
        notes = Notes()
        data = normalize(model, raw, notes)
        for where, message in notes.found:
            self.add((*loc, *where), message, "warning")
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            room = self.max_issues - len(self.issues)
            if room <= 0:
                self.omitted += exc.error_count()  # without pydantic's list of errors
                return None
            found = issues_from_validation(
                exc, model, raw, file=self.file, positions=self.positions, prefix=loc, limit=room
            )
            self.issues.extend(found)
            self.omitted += exc.error_count() - len(found)
            return None


def validate_dynamic_objects(
    data: Mapping[str, Any],
    *,
    file: str | None = None,
    positions: Positions | None = None,
    max_issues: int = MAX_ISSUES,
) -> DynamicObjects:
    """Validate a raw dynamic configuration object by object (see the module docstring)."""
    walk = _Walk(file, positions, max_issues)
    valid = _struct(DynamicConfig, dict(data), (), (), walk)
    # Every object in `valid` is a model already: pydantic takes them as they are.
    config = DynamicConfig.model_validate(valid or {})
    return DynamicObjects(
        config, walk.issues, walk.omitted, frozenset(walk.invalid), dict(walk.where)
    )


def _struct(
    model: type[BaseModel], raw: Any, loc: Loc, schema: tuple[str, ...], walk: _Walk
) -> dict[str, Any] | None:
    """The valid part of `raw`, a `model` made of other structs and of tables of objects,
    by the model's keys; None when `raw` is not a mapping."""
    if not isinstance(raw, dict):
        walk.validate(model, raw, loc)  # reports "expected a mapping"
        return None
    valid: dict[str, Any] = {}
    for key, value in raw.items():
        found = field_key(model, key) if isinstance(key, str) else None
        if found is None:
            if walk.full:
                walk.omitted += 1  # no "did you mean" worked out for a line not shown
            elif not loc:
                walk.add((key,), root_key_message(key), "warning")
            else:
                walk.add((*loc, key), unknown_key_message(model, key))
            continue
        if value is None:
            continue  # `http:` or `middlewares:` with nothing under it: as if not written
        alias, annotation = found
        part = _part(model, alias, annotation, value, (*loc, key), (*schema, alias), walk)
        if part is not None:
            # `Routers:` and `routers:` in one file: both count, as in `normalize`.
            valid[alias] = _combine(valid[alias], part) if alias in valid else part
    return valid


def _part(
    parent: type[BaseModel],
    alias: str,
    annotation: Any,
    value: Any,
    loc: Loc,
    schema: tuple[str, ...],
    walk: _Walk,
) -> Any:
    """The valid part of the value of one key of a struct: a struct, a table or a list."""
    shape = shape_of(annotation)
    if shape.kind == "struct":
        assert shape.model is not None
        return _struct(shape.model, value, loc, schema, walk)
    item = shape_of(shape.item).model
    assert item is not None, f"{alias}: the tables of a dynamic configuration hold models"
    if shape.kind == "map" and isinstance(value, dict):
        return _table(item, value, loc, schema, walk)
    if shape.kind == "list" and isinstance(value, list):
        return _items(item, value, loc, schema, walk)
    walk.validate(parent, {alias: value}, loc[:-1])  # "expected a mapping / a list"
    return None


def _table(
    item: type[BaseModel], raw: dict[Any, Any], loc: Loc, schema: tuple[str, ...], walk: _Walk
) -> dict[str, Any]:
    protocol, section = schema
    valid: dict[str, Any] = {}
    for raw_name, body in raw.items():
        # YAML and TOML make `418:` an int; names are strings (as in `normalize`).
        is_number = isinstance(raw_name, int | float) and not isinstance(raw_name, bool)
        name = str(raw_name) if is_number else raw_name
        where = (*loc, str(raw_name))
        if not isinstance(name, str):
            walk.add(where, f"expected a string, got {raw_name!r}")
            continue
        key: ObjectKey = (protocol, section, name)
        walk.where.setdefault(key, where)
        obj = walk.validate(item, body, where)
        if "@" in name:
            walk.add(where, f"name {name!r} must not contain '@' (it is reserved for references)")
        elif obj is not None:
            valid[name] = obj
            continue
        walk.invalid.add(key)
    return valid


def _items(
    item: type[BaseModel], raw: list[Any], loc: Loc, schema: tuple[str, ...], walk: _Walk
) -> list[Any]:
    protocol, section = schema
    valid: list[Any] = []
    for index, body in enumerate(raw):
        key: ObjectKey = (protocol, section, index)
        walk.where[key] = (*loc, index)
        obj = walk.validate(item, body, (*loc, index))
        if obj is None:
            walk.invalid.add(key)
        else:
            valid.append(obj)
    return valid


def _combine(previous: Any, part: Any) -> Any:
    """Two spellings of one key: lists joined, mappings merged down to the objects (of one
    name defined under both spellings, the later one is kept)."""
    if isinstance(previous, list) and isinstance(part, list):
        return [*previous, *part]
    if isinstance(previous, dict) and isinstance(part, dict):
        merged = dict(previous)
        for key, value in part.items():
            merged[key] = _combine(merged[key], value) if key in merged else value
        return merged
    return part
