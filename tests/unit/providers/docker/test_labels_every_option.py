"""Every option of every middleware type the data plane applies is reachable from Docker
labels: `proxynow.http.middlewares.<name>.<type>.<option>` (lowercase, as Traefik's docs
write them), lists comma-separated, maps by key (`customrequestheaders.X-Foo`), nested
structs by path (`ipstrategy.excludedips`).

The options are not listed here: they are walked from the models (config/middlewares.py)
of the types in the registry (edge/http/middlewares/registry.py), so a new option or type
is covered, or fails here, the day it is added. A sample value is made from the option's
shape and type; the test asserts that the value reached the model and differs from the
default (a label that was dropped would leave the default).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, get_args

import pytest
from pydantic import BaseModel, BeforeValidator
from pydantic.fields import FieldInfo

from proxynow.config.keys import Shape, shape_of
from proxynow.config.middlewares import Middleware
from proxynow.edge.http.middlewares.registry import BUILDERS
from proxynow.providers.docker.build import BuildOptions, Container, build_update

APP = Container("id-app", "app", {}, networks={"bridge": "10.0.0.2"}, ports=(80,))
MIDDLEWARES = "proxynow.http.middlewares."
MAP_KEY = "X-Foo"  # a user's key keeps its case, as in Traefik


@dataclass(frozen=True, slots=True)
class Option:
    """One leaf option: its attribute path, its label path, its shape and default."""

    kind: str
    attributes: tuple[str, ...]
    labels: tuple[str, ...]
    shape: Shape
    info: FieldInfo

    @property
    def default(self) -> Any:
        return None if self.info.is_required() else self.info.get_default(call_default_factory=True)

    @property
    def required(self) -> bool:
        return self.info.is_required()

    @property
    def label(self) -> str:
        return ".".join((self.kind.lower(), *self.labels))


def _options_model(kind: str) -> type[BaseModel]:
    fields = {str(info.alias): info for info in Middleware.model_fields.values()}
    model = shape_of(fields[kind].annotation).model
    assert model is not None, kind
    return model


def _leaves(
    kind: str,
    model: type[BaseModel],
    attributes: tuple[str, ...] = (),
    labels: tuple[str, ...] = (),
) -> Iterator[Option]:
    for name, info in model.model_fields.items():
        key = str(info.alias or name).lower()
        shape = shape_of(info.annotation)
        if shape.kind == "struct":
            assert shape.model is not None
            yield from _leaves(kind, shape.model, (*attributes, name), (*labels, key))
            continue
        yield Option(kind, (*attributes, name), (*labels, key), shape, info)


OPTIONS = [option for kind in sorted(BUILDERS) for option in _leaves(kind, _options_model(kind))]


def _scalar(annotation: Any, default: Any, metadata: list[Any] | None = None) -> tuple[str, Any]:
    """A label text for a scalar of this annotation and the value it must decode to."""
    base = shape_of(annotation).base
    if any(isinstance(m, BeforeValidator) for m in metadata or ()):
        return "3s", 3.0  # a Duration: a Go duration string, float seconds
    if base is bool:
        return ("false", False) if default is True else ("true", True)
    if base is int or int in get_args(base):
        return "7", 7
    if base is str:
        return "sample", "sample"
    raise AssertionError(f"no sample for a label of type {annotation!r}: add one here")


def sample(option: Option) -> tuple[dict[str, str], Any]:
    """The labels (below the type) that set `option`, and the value it must have."""
    shape = option.shape
    if shape.kind == "list":
        text, value = _scalar(shape.item, None)
        second = "two" if isinstance(value, str) else text
        expected = [value, second if isinstance(value, str) else value]
        return {option.label: f"{text}, {second}"}, expected
    if shape.kind == "map":
        text, value = _scalar(shape.item, None)
        return {f"{option.label}.{MAP_KEY}": text}, {MAP_KEY: value}
    text, value = _scalar(option.info.annotation, option.default, option.info.metadata)
    return {option.label: text}, value


def required_labels(kind: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for option in OPTIONS:
        if option.kind == kind and option.required:
            labels.update(sample(option)[0])
    return labels


def decode(labels: dict[str, str]) -> Middleware:
    """The middleware `m` that these labels (below `proxynow.http.middlewares.m.`) make."""
    container = replace(APP, labels={f"{MIDDLEWARES}m.{k}": v for k, v in labels.items()})
    update = build_update([container], BuildOptions())
    assert update.object_errors == {}, labels
    return update.config.http.middlewares["m"]


def value_at(middleware: Middleware, attributes: tuple[str, ...]) -> Any:
    found: Any = middleware.options
    for name in attributes:
        found = getattr(found, name)
    return found


def test_every_applied_type_has_options_to_walk() -> None:
    kinds = {option.kind for option in OPTIONS}
    assert kinds == set(BUILDERS)
    # A few known leaves, so that a walker that stopped early fails.
    labels = {option.label for option in OPTIONS}
    assert {
        "headers.customrequestheaders",
        "ipallowlist.ipstrategy.excludedips",
        "ratelimit.sourcecriterion.ipstrategy.depth",
        "forwardauth.tls.ca",
        "passtlsclientcert.info.subject.commonname",
        "basicauth.users",
        "compress.encodings",
    } <= labels


@pytest.mark.parametrize("option", OPTIONS, ids=[option.label for option in OPTIONS])
def test_option_is_reachable_from_labels(option: Option) -> None:
    labels, expected = sample(option)
    middleware = decode({**required_labels(option.kind), **labels})
    assert middleware.kind == option.kind
    got = value_at(middleware, option.attributes)
    assert got == expected
    assert got != option.default


LISTS = [option for option in OPTIONS if option.shape.kind == "list"]


@pytest.mark.parametrize("option", LISTS, ids=[option.label for option in LISTS])
def test_indexed_list_items_are_read(option: Option) -> None:
    # Traefik ignores `prefixes[0]` on a list of values (only lists of structs are
    # indexed, `tls.domains[0]`); proxynow reads it (docs/middlewares.md, "Labels").
    (label, text), expected = next(iter(sample(option)[0].items())), sample(option)[1]
    items = [part.strip() for part in text.split(",")]
    indexed = {f"{label}[{i}]": item for i, item in enumerate(items)}
    required = {k: v for k, v in required_labels(option.kind).items() if k != label}
    middleware = decode({**required, **indexed})
    assert value_at(middleware, option.attributes) == expected


def test_a_list_both_comma_separated_and_indexed_is_an_error_not_a_crash() -> None:
    container = replace(
        APP,
        labels={
            f"{MIDDLEWARES}m.stripprefix.prefixes": "/a",
            f"{MIDDLEWARES}m.stripprefix.prefixes[1]": "/b",
            "proxynow.http.routers.r.rule": "Host(`a.test`)",
        },
    )
    update = build_update([container], BuildOptions())
    (message,) = update.object_errors["http.middlewares.m"]
    assert "prefixes" in message and "both" in message
    assert "r" in update.config.http.routers
