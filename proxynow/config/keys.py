"""Case-insensitive key normalisation against a configuration model.

Traefik matches struct keys case-insensitively in files, flags, environment variables and
labels (`entrypoints` means `entryPoints`, `loadbalancer` means `loadBalancer`), while keys
the user chooses (router names, header names) keep their case. `normalize` rewrites a raw
dict so that every struct key has the model's spelling, by walking the model's field types
alongside the data: a model is a struct, `dict[str, X]` is a map of user keys, `list[X]` a
list. Unknown keys are left as they are for validation to report. The walker is shared by
the flag, environment and Docker-label parsers.

On the way it decodes values as leniently as Traefik's file decoder does (checked against
Traefik 3.7, see docs/configuration.md "Lenient decoding"): a null value is left out as if
not written, a single string where a list of values is expected is split on commas (a
number or boolean there is a list of one), a number or boolean where a string is expected
is its text, and `true` where an optional section is expected enables it with its
defaults (`false` leaves it off). Deprecated keys Traefik still reads (compat.py) are
read under their replacement's name, and each one met is noted in `Notes` when asked.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from functools import cache
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from proxynow.config.compat import Deprecation, deprecations

__all__ = [
    "Notes",
    "Shape",
    "allowed_keys",
    "field_key",
    "normalize",
    "shape_at",
    "shape_of",
    "struct_at",
]


@dataclass(frozen=True, slots=True)
class Shape:
    """What a type annotation means for raw data: struct, map, list or scalar."""

    kind: Literal["struct", "map", "list", "scalar"]
    model: type[BaseModel] | None = None  # for "struct"
    item: Any = None  # value type for "map", item type for "list"
    optional: bool = False
    base: Any = None  # for "scalar": the type under Annotated and `| None` (str, int, ...)


def shape_of(annotation: Any) -> Shape:
    """Classify an annotation, looking through Annotated and `X | None`."""
    optional = False
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin is Union or origin is types.UnionType:
            members = [arg for arg in get_args(annotation) if arg is not type(None)]
            optional = optional or len(members) < len(get_args(annotation))
            if len(members) != 1:
                return Shape("scalar", optional=optional, base=annotation)
            annotation = members[0]
        else:
            break
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return Shape("struct", model=annotation, optional=optional)
    if origin is dict:
        return Shape("map", item=get_args(annotation)[1], optional=optional)
    if origin is list:
        return Shape("list", item=get_args(annotation)[0], optional=optional)
    return Shape("scalar", optional=optional, base=annotation)


@cache
def _lookup(model: type[BaseModel]) -> dict[str, tuple[str, Any]]:
    """Lowercased alias and attribute name → (alias, annotation); a deprecated key that
    was renamed (`ipWhiteList`) maps to its replacement's field."""
    table: dict[str, tuple[str, Any]] = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        table[name.lower()] = (key, info.annotation)
        table[key.lower()] = (key, info.annotation)
    for old, deprecation in _deprecated(model).items():
        if deprecation.rename is not None:
            table.setdefault(old, table[deprecation.rename.lower()])
    return table


@cache
def _deprecated(model: type[BaseModel]) -> dict[str, Deprecation]:
    return {old.lower(): entry for old, entry in deprecations(model).items()}


@dataclass
class Notes:
    """Deprecated keys met by `normalize`: (path as the user spelt it, message)."""

    found: list[tuple[tuple[str | int, ...], str]] = field(default_factory=list)
    stack: list[str | int] = field(default_factory=list)

    def note(self, message: str) -> None:
        self.found.append((tuple(self.stack), message))


class _Absent:
    """A null value: the key is left out, as if it was not written."""


_ABSENT = _Absent()


def field_key(model: type[BaseModel], key: str) -> tuple[str, Any] | None:
    """The model's spelling of `key` and its annotation, or None if it is not a field."""
    return _lookup(model).get(key.lower())


def allowed_keys(model: type[BaseModel]) -> list[str]:
    """The keys a model accepts, in the spelling of the configuration files."""
    return [field.alias or name for name, field in model.model_fields.items()]


def normalize(annotation: Any, data: Any, notes: Notes | None = None) -> Any:
    """Return `data` with every struct key spelt as the model `annotation` spells it, and
    values decoded leniently (see the module docstring)."""
    value = _value(shape_of(annotation), data, notes)
    return None if value is _ABSENT else value


def _value(shape: Shape, data: Any, notes: Notes | None) -> Any:
    if data is None:
        return _ABSENT
    if shape.kind == "struct":
        return _struct_value(shape, data, notes)
    if shape.kind == "map" and isinstance(data, dict):
        return _map(shape, data, notes)
    if shape.kind == "list":
        return _list(shape, data, notes)
    if shape.base is str and isinstance(data, int | float):
        return _text(data)  # `customBrowserXSSValue: 0` is the string "0" for Traefik
    return data


def _struct_value(shape: Shape, data: Any, notes: Notes | None) -> Any:
    assert shape.model is not None
    if isinstance(data, dict):
        return _normalize_struct(shape.model, data, notes)
    # `tls: true` enables a section with its defaults, `tls: false` leaves it off.
    flag = data.lower() if isinstance(data, str) else data
    if flag is True or flag == "true":
        return {}
    if (flag is False or flag == "false") and shape.optional:
        return _ABSENT
    return data


def _map(shape: Shape, data: dict[Any, Any], notes: Notes | None) -> dict[Any, Any]:
    item = shape_of(shape.item)
    result: dict[Any, Any] = {}
    for key, value in data.items():
        if notes is not None:
            notes.stack.append(str(key))
        # YAML and TOML turn `418:` into an int; map keys are strings in the models.
        found = _value(item, value, notes)
        if notes is not None:
            notes.stack.pop()
        if found is not _ABSENT:  # `X-Custom-Header: ~` is not set at all (as Traefik)
            result[_map_key(key)] = found
    return result


def _list(shape: Shape, data: Any, notes: Notes | None) -> Any:
    item = shape_of(shape.item)
    if item.kind == "scalar":
        if isinstance(data, str):
            # Traefik's decoder splits a string where a list is expected on commas and
            # trims the parts: `entryPoints: web,websecure`, `sourceRange: "a, b"`.
            data = [part.strip() for part in data.split(",")] if data.strip() else []
        elif isinstance(data, int | float):
            data = [data]
    if not isinstance(data, list):
        return data
    result = []
    for index, value in enumerate(data):
        if notes is not None:
            notes.stack.append(index)
        found = _value(item, value, notes)
        if notes is not None:
            notes.stack.pop()
        result.append(None if found is _ABSENT else found)
    return result


def _text(value: int | float) -> str:
    """A YAML/TOML number or boolean as Go's fmt prints it (`true`, `1`, `0.5`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def _map_key(key: Any) -> Any:
    return str(key) if isinstance(key, int | float) and not isinstance(key, bool) else key


def _normalize_struct(
    model: type[BaseModel], data: dict[Any, Any], notes: Notes | None = None
) -> dict[Any, Any]:
    result: dict[Any, Any] = {}
    for key, value in data.items():
        found = field_key(model, key) if isinstance(key, str) else None
        if found is None:
            result[key] = value
            continue
        name, annotation = found
        if notes is not None:
            notes.stack.append(key)
            _note_deprecated(model, key, value, notes)
        value = _value(shape_of(annotation), value, notes)
        if notes is not None:
            notes.stack.pop()
        if value is _ABSENT:
            continue
        previous = result.get(name)
        if isinstance(previous, dict) and isinstance(value, dict):
            value = {**previous, **value}  # `entryPoints` and `entrypoints` in one file
        result[name] = value
    return result


def _note_deprecated(model: type[BaseModel], key: str, value: Any, notes: Notes) -> None:
    entry = _deprecated(model).get(key.lower())
    if entry is not None and entry.applies(value):
        notes.note(entry.message)


def shape_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> Shape | None:
    """The shape of the value at `loc` (model spelling) under `model`, or None if unknown."""
    shape = Shape("struct", model=model)
    for part in loc:
        if shape.kind == "struct" and isinstance(part, str):
            assert shape.model is not None
            found = field_key(shape.model, part)
            if found is None:
                return None
            shape = shape_of(found[1])
        elif shape.kind in ("map", "list"):
            shape = shape_of(shape.item)
        else:
            return None
    return shape


def struct_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The model class of the struct at `loc`, or None if `loc` is not a struct."""
    shape = shape_at(model, loc)
    return shape.model if shape is not None and shape.kind == "struct" else None
