"""`providers.docker.defaultRule`: the small Go-template subset Traefik users write.

Traefik evaluates the default rule as a Go template with sprig; in practice users write
``Host(`{{ normalize .Name }}.example.com`)`` and occasionally read a label. This module
evaluates exactly these actions, and nothing else, so a rule can never run code:

- `{{ .Name }}` (the service name), `{{ .ContainerName }}`;
- `{{ index .Labels "key" }}`;
- `{{ normalize X }}` and `{{ lower X }}` where X is one of the above, optionally
  parenthesised (`{{ normalize (index .Labels "k") }}`).

Anything else is a `TemplateError` naming the action, reported on the router.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["TemplateError", "TemplateValues", "normalize", "render"]

_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}")
_NOT_ALNUM = re.compile(r"[^a-zA-Z0-9]+")
_INDEX = re.compile(r'^index\s+\.Labels\s+"((?:[^"\\]|\\.)*)"$')


class TemplateError(ValueError):
    """A defaultRule action outside the supported subset."""


@dataclass(frozen=True, slots=True)
class TemplateValues:
    """What a defaultRule can read about a container."""

    name: str
    container_name: str
    labels: Mapping[str, str]


def normalize(name: str) -> str:
    """Traefik's `normalize`: every run of non-alphanumerics becomes `-`, ends trimmed."""
    return _NOT_ALNUM.sub("-", name).strip("-")


def render(template: str, values: TemplateValues) -> str:
    """Evaluate every `{{ ... }}` action of `template` against `values`."""
    return _ACTION.sub(lambda match: _action(match[1], values), template)


def _action(text: str, values: TemplateValues) -> str:
    for function, apply in (("normalize", normalize), ("lower", str.lower)):
        if text.startswith(function + " ") or text.startswith(function + "("):
            return apply(_value(_unparen(text[len(function) :].strip()), values))
    return _value(text, values)


def _unparen(text: str) -> str:
    if text.startswith("(") and text.endswith(")"):
        return text[1:-1].strip()
    return text


def _value(text: str, values: TemplateValues) -> str:
    if text == ".Name":
        return values.name
    if text == ".ContainerName":
        return values.container_name
    match = _INDEX.match(text)
    if match is not None:
        return values.labels.get(match[1].replace('\\"', '"'), "")
    raise TemplateError(f"defaultRule: unsupported template action {{{{ {text} }}}}")
