"""Case-insensitive key normalisation against a configuration model.

Traefik matches struct keys case-insensitively in files, flags, environment variables and
labels (`entrypoints` means `entryPoints`, `loadbalancer` means `loadBalancer`), while keys
the user chooses (router names, header names) keep their case. `normalize` rewrites a raw
dict so that every struct key has the model's spelling, by walking the model's field types
alongside the data: a model is a struct, `dict[str, X]` is a map of user keys, `list[X]` a
list. Unknown keys are left as they are for validation to report. The walker is shared by
the flag, environment and Docker-label parsers.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

__all__ = ["Shape", "allowed_keys", "field_key", "normalize", "shape_at", "shape_of", "struct_at"]


@dataclass(frozen=True, slots=True)
class Shape:
    """What a type annotation means for raw data: struct, map, list or scalar."""

    kind: Literal["struct", "map", "list", "scalar"]
    model: type[BaseModel] | None = None  # for "struct"
    item: Any = None  # value type for "map", item type for "list"
    optional: bool = False


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
                return Shape("scalar", optional=optional)
            annotation = members[0]
        else:
            break
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return Shape("struct", model=annotation, optional=optional)
    if origin is dict:
        return Shape("map", item=get_args(annotation)[1], optional=optional)
    if origin is list:
        return Shape("list", item=get_args(annotation)[0], optional=optional)
    return Shape("scalar", optional=optional)


@cache
def _lookup(model: type[BaseModel]) -> dict[str, tuple[str, Any]]:
    """Lowercased alias and attribute name → (alias, annotation)."""
    table: dict[str, tuple[str, Any]] = {}
    for name, field in model.model_fields.items():
        key = field.alias or name
        table[name.lower()] = (key, field.annotation)
        table[key.lower()] = (key, field.annotation)
    return table


def field_key(model: type[BaseModel], key: str) -> tuple[str, Any] | None:
    """The model's spelling of `key` and its annotation, or None if it is not a field."""
    return _lookup(model).get(key.lower())


def allowed_keys(model: type[BaseModel]) -> list[str]:
    """The keys a model accepts, in the spelling of the configuration files."""
    return [field.alias or name for name, field in model.model_fields.items()]


def normalize(annotation: Any, data: Any) -> Any:
    """Return `data` with every struct key spelt as the model `annotation` spells it."""
    shape = shape_of(annotation)
    if shape.kind == "struct" and isinstance(data, dict):
        assert shape.model is not None
        return _normalize_struct(shape.model, data)
    if shape.kind == "map" and isinstance(data, dict):
        # YAML and TOML turn `418:` into an int; map keys are strings in the models.
        return {_map_key(key): normalize(shape.item, value) for key, value in data.items()}
    if shape.kind == "list" and isinstance(data, list):
        return [normalize(shape.item, item) for item in data]
    return data


def _map_key(key: Any) -> Any:
    return str(key) if isinstance(key, int | float) and not isinstance(key, bool) else key


def _normalize_struct(model: type[BaseModel], data: dict[Any, Any]) -> dict[Any, Any]:
    result: dict[Any, Any] = {}
    for key, value in data.items():
        found = field_key(model, key) if isinstance(key, str) else None
        if found is None:
            result[key] = value
            continue
        name, annotation = found
        value = normalize(annotation, value)
        previous = result.get(name)
        if isinstance(previous, dict) and isinstance(value, dict):
            value = {**previous, **value}  # `entryPoints` and `entrypoints` in one file
        result[name] = value
    return result


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
