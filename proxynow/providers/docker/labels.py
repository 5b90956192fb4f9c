"""Docker labels → raw dynamic configuration, in Traefik's label grammar.

A label key such as `proxynow.http.routers.web.tls.domains[0].sans` is a dotted path into
the dynamic configuration, matched case-insensitively against the models by walking their
shapes (`proxynow.config.keys`): at a struct the segment is a field, at a map it is a user
key (a router name, a header name), and a `[n]` suffix indexes a list of structs. At the
leaf, the field's shape decides the encoding: lists of scalars are comma-separated with
each element trimmed; an "enable-only" struct takes `true` (`tls=true`,
`sticky.cookie=true`); everything else is a string that pydantic converts and checks.

Only `<prefix>.http.`, `<prefix>.tcp.` and `<prefix>.udp.` keys become configuration, as in
Traefik; `<prefix>.enable` and `<prefix>.docker.*` are read by the builder. The
`loadbalancer.server.*` keys (port, scheme, url, weight) are not part of the dynamic model:
they are kept under a raw `server` key for the builder, which turns them into servers.

Decoding never raises: a malformed key is returned as an error for the object it belongs
to (`"http.routers.web"`), so the builder can disable just that object. A key that no
object can carry (an unknown section such as `udp.middlewares`, `http.routers` without a
name) and a malformed provider label (`enable=maybe`, an unknown `docker.*` key, as
Traefik's `extractDockerLabels` rejects) are errors of the whole container instead: the
builder leaves it out (issue 18). `ipWhiteList` is read as `ipAllowList`, its deprecated
name in Traefik, with a warning.
"""

from __future__ import annotations

import re
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from proxynow.config.dynamic import DynamicConfig
from proxynow.config.keys import Shape, field_key
from proxynow.config.keys import shape_of as _shape_of
from proxynow.providers.base import SECTIONS

__all__ = ["PROTOCOLS", "Decoded", "decode_labels", "provider_label_errors", "provider_labels"]

PROTOCOLS = ("http", "tcp", "udp")
_INDEX = re.compile(r"^(?P<name>[^\[\]]+)(?:\[(?P<index>\d+)\])?$")
_TRUE = frozenset({"1", "t", "true"})
_FALSE = frozenset({"0", "f", "false"})
# `loadbalancer.server.<field>`: the builder's raw server description (Traefik's Server).
SERVER_KEY = "server"
_LOAD_BALANCERS = frozenset({"LoadBalancer", "TCPLoadBalancer", "UDPLoadBalancer"})
_LABELLED = frozenset((protocol, section) for protocol, section, _ in SECTIONS)
# Deprecated middleware type names (Traefik v3 still reads them) → the current name.
_DEPRECATED_TYPES = {"ipwhitelist": ("ipWhiteList", "ipAllowList")}
# The provider's own labels (Traefik's dockerSpecificConfiguration): booleans, or text.
_PROVIDER_BOOLEANS = frozenset({"enable", "docker.allownonrunning", "docker.lbswarm"})
_PROVIDER_TEXT = frozenset({"docker.network"})


# Annotations repeat across thousands of labels; their shapes are computed once.
shape_of = cache(_shape_of)


class _Indexed(dict[int, Any]):
    """A list of structs under construction (`domains[0]`, `domains[1]`)."""


@dataclass(slots=True)
class Decoded:
    """The raw configuration of one container and the errors per object key."""

    raw: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    container_errors: list[str] = field(default_factory=list)  # the whole container is out
    warnings: list[str] = field(default_factory=list)

    def error(self, key: str, message: str) -> None:
        self.errors.setdefault(key, []).append(message)


def parse_bool(text: str) -> bool | None:
    """Go's ParseBool (`1`, `t`, `TRUE`, `True`, ...), None when it is not a boolean."""
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    return None


def provider_labels(labels: Mapping[str, str], prefixes: Iterable[str]) -> dict[str, str]:
    """The labels under the given prefixes (matched case-insensitively), prefix removed.

    With `traefikLabels`, `prefixes` is ("proxynow", "traefik"): a key set under both
    is taken from `proxynow.` (listed first)."""
    result: dict[str, str] = {}
    for prefix in reversed(tuple(prefixes)):
        start = prefix + "."
        for key, value in labels.items():
            if key[: len(start)].lower() == start:
                result[key[len(start) :]] = value
    return result


def provider_label_errors(labels: Mapping[str, str]) -> list[str]:
    """Errors in the provider's own labels (prefix-stripped): `enable`, `docker.*`.

    An empty value counts as unset, as the builder reads it."""
    errors = []
    for key in sorted(labels):
        lowered, value = key.lower(), labels[key]
        if lowered in _PROVIDER_BOOLEANS:
            if value.strip() and parse_bool(value) is None:
                errors.append(f"label {key!r}: expected a boolean, got {value!r}")
        elif lowered.startswith("docker.") and lowered not in _PROVIDER_TEXT:
            known = ", ".join(sorted(k for k in _PROVIDER_BOOLEANS | _PROVIDER_TEXT if "." in k))
            errors.append(f"label {key!r}: unknown key (known: {known})")
    return errors


def decode_labels(labels: Mapping[str, str]) -> Decoded:
    """Decode prefix-stripped labels (see `provider_labels`) into raw dynamic config."""
    decoded = Decoded()
    for key in sorted(labels):
        parts = key.split(".")
        if parts[0].lower() not in PROTOCOLS:
            continue  # Traefik ignores other second segments (`enable`, `docker.*`, typos)
        if len(parts) < 3:
            decoded.container_errors.append(f"label {key!r}: incomplete key")
            continue
        section = _section(parts[1])
        if (parts[0].lower(), section) not in _LABELLED:
            decoded.container_errors.append(f"label {key!r}: unknown section {parts[1]!r}")
            continue
        owner = f"{parts[0].lower()}.{section}.{parts[2]}"
        if len(parts) < 4:  # keep the object, so that its error is shown on it
            _insert(decoded.raw, [*parts, "\0"], "")
            decoded.error(owner, f"label {key!r}: incomplete key")
            continue
        if section == "middlewares":
            parts[3] = _current_type(decoded, owner, parts[3])
        message = _insert(decoded.raw, parts, labels[key])
        if message is not None:
            decoded.error(owner, f"label {key!r}: {message}")
    decoded.raw = _finish(decoded.raw)
    decoded.warnings = list(dict.fromkeys(decoded.warnings))
    return decoded


def _current_type(decoded: Decoded, owner: str, segment: str) -> str:
    """`ipwhitelist` → `ipAllowList` (with a warning); other type names unchanged."""
    found = _DEPRECATED_TYPES.get(segment.lower())
    if found is None:
        return segment
    old, new = found
    decoded.warnings.append(f"{owner}: {old} is deprecated, use {new}")
    return new


def _section(segment: str) -> str:
    found = field_key(_protocol_model("http"), segment) or field_key(
        _protocol_model("tcp"), segment
    )
    return found[0] if found else segment


def _protocol_model(protocol: str) -> type[BaseModel]:
    found = field_key(DynamicConfig, protocol)
    assert found is not None
    shape = shape_of(found[1])
    assert shape.model is not None
    return shape.model


def _insert(root: dict[str, Any], parts: list[str], value: str) -> str | None:
    """Put `value` at the path `parts`; an error message, or None."""
    matches = [_INDEX.match(segment) for segment in parts]
    for segment, found in zip(parts, matches, strict=True):
        if found is None:
            return f"malformed segment {segment!r}"
    node: dict[Any, Any] = root
    shape = Shape("struct", model=DynamicConfig)
    for position, match in enumerate(matches):
        assert match is not None
        name, index = match["name"], match["index"]
        if name == "\0":
            return None  # only the containers above were wanted (an incomplete key)
        key, annotation = _step(shape, name)
        shape = shape_of(annotation)
        last = position == len(parts) - 1
        if index is not None:
            if shape.kind != "list":
                return f"{name!r} is not a list"
            node = _child(node, key, _Indexed)
            if not isinstance(node, _Indexed):  # `prefixes=/a` next to `prefixes[1]=/b`
                return f"{name!r} is both a comma-separated list and indexed"
            key, annotation = int(index), shape.item
            shape = shape_of(annotation)
        if last:
            return _set_leaf(node, key, shape, _literal(annotation, value))
        node = _child(node, key, dict)
        if not isinstance(node, dict):
            return f"{name!r} is both a value and a section"
    return None


def _step(shape: Shape, name: str) -> tuple[Any, Any]:
    """The key to use for segment `name` under `shape`, and the annotation below it."""
    if shape.kind == "struct" and shape.model is not None:
        if shape.model.__name__ in _LOAD_BALANCERS and name.lower() == SERVER_KEY:
            return SERVER_KEY, dict[str, str]
        found = field_key(shape.model, name)
        if found is None:
            return name, str  # left for validation to name as unknown
        return found
    if shape.kind == "map":
        return name, shape.item
    return name, str


def _literal(annotation: Any, value: str) -> Any:
    """`"2"` → 2 for an integer Literal field (`proxyProtocol.version`): labels are text."""
    if get_origin(annotation) in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        annotation = members[0] if len(members) == 1 else annotation
    choices = get_args(annotation) if get_origin(annotation) is Literal else ()
    if choices and all(isinstance(c, int) for c in choices) and value.strip().isdigit():
        return int(value)
    return value


def _child(node: dict[Any, Any], key: Any, kind: type[dict[Any, Any]]) -> Any:
    existing = _find(node, key)
    if existing is None:
        child = kind()
        node[key] = child
        return child
    child = node[existing]
    if isinstance(child, dict) and not isinstance(child, kind):
        child = node[existing] = kind(child)  # `tls=true` then `tls.certresolver=x`
    return child


def _find(node: dict[Any, Any], key: Any) -> Any:
    """The existing key equal to `key`, case-insensitively for names (Traefik collapses)."""
    if key in node:
        return key
    if isinstance(key, str):
        lowered = key.lower()
        return next((k for k in node if isinstance(k, str) and k.lower() == lowered), None)
    return None


def _set_leaf(node: dict[Any, Any], key: Any, shape: Shape, value: str) -> str | None:
    existing = _find(node, key)
    if existing is not None and isinstance(node[existing], dict):
        if shape.kind == "struct" and parse_bool(value) is True:
            return None  # `tls=true` next to `tls.certresolver`: the struct is already on
        return f"{key!r} is both a value and a section"
    if shape.kind == "list" and shape_of(shape.item).kind == "scalar":
        node[key] = [item.strip() for item in value.split(",") if item.strip()]
    elif shape.kind in ("struct", "map"):
        enabled = parse_bool(value)
        if enabled is None:
            return f"expected true or a sub-key, got {value!r}"
        if enabled:
            node[key] = {}
    else:
        node[key] = value
    return None


def _finish(node: Any) -> Any:
    """Turn `_Indexed` maps into lists (gaps are an error for validation: None items)."""
    if isinstance(node, _Indexed):
        size = max(node) + 1 if node else 0
        return [_finish(node.get(i)) for i in range(size)]
    if isinstance(node, dict):
        return {key: _finish(value) for key, value in node.items()}
    return node
