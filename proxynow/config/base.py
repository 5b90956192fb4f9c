"""Shared building blocks of the configuration models.

`Model` is the base of every configuration class: Python attributes are snake_case, the
serialised names are Traefik's camelCase, unknown keys are errors and instances are
frozen. `Duration` accepts what Traefik accepts for a duration (a Go duration string such
as `1m30s` or a bare number of seconds) and yields float seconds.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

__all__ = ["Duration", "Model", "alias", "parse_duration"]


class Model(BaseModel):
    """Base of all configuration models (camelCase keys, strict about unknown keys)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


def alias(name: str, **kwargs: Any) -> Any:
    """A field whose serialised name differs from the generated camelCase (`rootCAs`)."""
    return Field(alias=name, **kwargs)


# Go's time.ParseDuration units, in seconds. "µs" and "μs" are both accepted by Go.
_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


def parse_duration(value: object) -> object:
    """Turn `10s`, `1m30s`, `500ms`, `1h` or a bare number (seconds) into float seconds.

    Anything that is not a string or a number is returned unchanged so that pydantic
    reports the type error itself.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        return value
    text = value.strip()
    if _NUMBER.fullmatch(text):
        return float(text)
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    if body == "0":
        return 0.0
    total = 0.0
    position = 0
    for match in _PART.finditer(body):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if position == 0 or position != len(body):
        raise ValueError(f"invalid duration {value!r} (expected e.g. 10s, 1m30s, 500ms or seconds)")
    return sign * total


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number"},
                {
                    "type": "string",
                    "pattern": r"^[+-]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)?)+$",
                },
            ],
            "description": "A duration: a Go duration string (10s, 1m30s, 500ms) or seconds.",
        }
    ),
]
