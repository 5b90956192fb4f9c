"""The configuration reference pages, generated from the models so that they cannot drift.

`python -m proxynow.config.reference` rewrites docs/reference-static.md and
docs/reference-dynamic.md from `StaticConfig` and `DynamicConfig`: every option that the
models accept, by its file spelling (camelCase), with its type, its default and an example
(a flag for the static configuration, a Docker label for the dynamic one).
`--check` exits 1 when a committed page differs from what the models produce;
tests/unit/test_docs.py runs it in the suite.
"""

from __future__ import annotations

import argparse
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from proxynow.config.base import parse_duration
from proxynow.config.dynamic import DynamicConfig
from proxynow.config.static import StaticConfig

__all__ = ["PAGES", "Row", "main", "page", "rows"]

DOCS = Path(__file__).resolve().parents[2] / "docs"

# The name an example gives to a user-chosen key, by the map that holds it.
_MAP_NAMES = {
    "entryPoints": "web",
    "certificatesResolvers": "le",
    "routers": "app",
    "services": "app",
    "middlewares": "mw",
    "serversTransports": "backend",
    "options": "modern",
    "stores": "default",
}
# Example values of common options, by key (else one is made from the type).
_SAMPLES: dict[str, str] = {
    "address": ":443",
    "url": "http://10.0.0.2:8080",
    "rule": "Host(`example.com`)",
    "service": "app",
    "entryPoints": "websecure",
    "entryPoint": "web",
    "to": "websecure",
    "certResolver": "le",
    "email": "admin@example.com",
    "storage": "/data/acme.json",
    "caServer": "https://acme-staging-v02.api.letsencrypt.org/directory",
    "main": "example.com",
    "sans": "www.example.com",
    "endpoint": "unix:///var/run/docker.sock",
    "network": "web",
    "filename": "/etc/proxynow/dynamic.yml",
    "directory": "/etc/proxynow/dynamic",
    "filePath": "/var/log/proxynow/access.log",
    "path": "/health",
    "prefix": "/api",
    "prefixes": "/api",
    "middlewares": "mw",
    "users": "user:$apr1$...",
    "sourceRange": "10.0.0.0/8",
    "trustedIPs": "10.0.0.0/8",
    "certFile": "/certs/example.crt",
    "keyFile": "/certs/example.key",
    "name": "app",
    "fallback": "backup",
    "status": "500-599",
    "stores": "default",
    "statusCodes": "500-599",
    "scheme": "https",
    "options": "modern",
    "regex": "^/old/(.*)",
    "replacement": "/new/$1",
    "realm": "example",
    "provider": "cloudflare",
    "kid": "key-id",
    "hmacEncoded": "c2VjcmV0",
}
_SCALAR_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean"}


@dataclass(frozen=True, slots=True)
class Row:
    """One option: its dotted path (`<name>` for user keys), type, default and example."""

    path: str
    type: str
    default: str
    example: str


@dataclass(frozen=True, slots=True)
class Page:
    file: str
    model: type[BaseModel]
    title: str
    intro: str
    example: Callable[[str, str], str]  # (dotted path with names, value) -> example


def _flag(path: str, value: str) -> str:
    return f"`--{path}={value}`"


def _label(path: str, value: str) -> str:
    if path.startswith("tls."):  # labels carry routers, services, middlewares, transports
        return f"file only: `{path}: {value}`"
    return f"`proxynow.{path}={value}`"


def _is_duration(metadata: list[Any]) -> bool:
    return any(getattr(item, "func", None) is parse_duration for item in metadata)


def _strip(annotation: Any) -> tuple[Any, bool, bool]:
    """(annotation without Annotated and `| None`, optional, is a duration)."""
    optional = duration = False
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            duration = duration or _is_duration(list(get_args(annotation)[1:]))
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            members = [arg for arg in get_args(annotation) if arg is not type(None)]
            optional = optional or len(members) < len(get_args(annotation))
            if len(members) != 1:
                return annotation, optional, duration
            annotation = members[0]
        else:
            return annotation, optional, duration


def _type_name(annotation: Any, duration: bool = False) -> str:
    annotation, _, inner_duration = _strip(annotation)
    if duration or inner_duration:
        return "duration"
    origin = get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(f"`{value}`" for value in get_args(annotation))
    if origin is list:
        return f"list of {_type_name(get_args(annotation)[0])}"
    if origin is dict:
        return f"map of {_type_name(get_args(annotation)[1])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(arg) for arg in get_args(annotation))
    return _SCALAR_NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        if getattr(info.default_factory, "__name__", "") == "_cpu_count":
            return "the number of CPUs"
        value = info.default_factory()  # type: ignore[call-arg]
    elif info.default is PydanticUndefined:
        return "required"
    else:
        value = info.default
    if isinstance(value, BaseModel):
        return ""
    if value is None:
        return "off"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and _is_duration(info.metadata):
        return f"`{_seconds(value)}`"
    if value in ("", [], {}):
        return "empty"
    return f"`{value}`"


def _seconds(value: float) -> str:
    return "0s" if value == 0 else f"{value:g}s"


def _sample(key: str, annotation: Any, info: FieldInfo | None) -> str:
    """An example value for an option (never its default when one is obvious)."""
    if key in _SAMPLES:
        return _SAMPLES[key]
    base, _, duration = _strip(annotation)
    if duration or (info is not None and _is_duration(info.metadata)):
        return "10s"
    origin = get_origin(base)
    if origin is list:
        return _sample(key, get_args(base)[0], None)
    if origin is Literal:
        choices = get_args(base)
        default = None if info is None else info.default
        return str(next((choice for choice in choices if choice != default), choices[0]))
    if base is bool:
        return "false" if info is not None and info.default is True else "true"
    if base is int:
        number = info.default if info is not None else None
        small = isinstance(number, int) and 0 < number < 1 << 20
        return str(number * 2) if isinstance(number, int) and small else "8"
    if base is float:
        return "0.5"
    return "value"


def _has_required(model: type[BaseModel]) -> bool:
    return any(info.is_required() for info in model.model_fields.values())


def rows(model: type[BaseModel], prefix: str = "", named: str = "") -> Iterator[Row]:
    """Every option of `model`, depth first in the order the model declares them.

    `prefix` is the path as the table shows it (`entryPoints.<name>`), `named` the same
    path with example names (`entryPoints.web`).
    """
    for attribute, info in model.model_fields.items():
        key = info.alias or attribute
        path, example_path = f"{prefix}{key}", f"{named}{key}"
        yield from _rows_of(key, info.annotation, info, path, example_path)


def _rows_of(
    key: str, annotation: Any, info: FieldInfo | None, path: str, named: str
) -> Iterator[Row]:
    base, _, duration = _strip(annotation)
    duration = duration or (info is not None and _is_duration(info.metadata))
    origin = get_origin(base)
    default = "" if info is None else _default(info)
    if isinstance(base, type) and issubclass(base, BaseModel):
        if default:  # an optional section: writing it at all enables it
            on = "" if _has_required(base) else f"{named}=true"
            yield Row(path, "section", default, on)
        yield from rows(base, f"{path}.", f"{named}.")
        return
    if origin is dict:
        item = get_args(base)[1]
        item_base = _strip(item)[0]
        if isinstance(item_base, type) and issubclass(item_base, BaseModel):
            name = _MAP_NAMES.get(key, "name")
            yield from rows(item_base, f"{path}.<name>.", f"{named}.{name}.")
            return
    if origin is list:
        item_base = _strip(get_args(base)[0])[0]
        if isinstance(item_base, type) and issubclass(item_base, BaseModel):
            yield from rows(item_base, f"{path}[].", f"{named}[0].")
            return
    type_name = _type_name(annotation, duration)
    value = _sample(key, annotation, info)
    if origin is dict:
        yield Row(path, type_name, default, f"{named}.X-Name={value}")
        return
    yield Row(path, type_name, default, f"{named}={value}")


def _table(page: Page, model: type[BaseModel]) -> Iterator[str]:
    """One section per top-level option, each a table of its options."""
    for attribute, info in model.model_fields.items():
        key = info.alias or attribute
        yield f"## `{key}`"
        yield ""
        yield "| Option | Type | Default | Example |"
        yield "|---|---|---|---|"
        for row in _rows_of(key, info.annotation, info, key, key):
            example = page.example(*row.example.split("=", 1)) if row.example else ""
            yield f"| `{row.path}` | {row.type} | {row.default} | {_cell(example)} |"
        yield ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def page(which: Page) -> str:
    """The Markdown of one reference page."""
    lines = [
        f"# {which.title}",
        "",
        "<!-- Generated by `python -m proxynow.config.reference` from "
        "proxynow/config/; do not edit. -->",
        "",
        which.intro.strip(),
        "",
        *_table(which, which.model),
    ]
    return "\n".join(lines).rstrip() + "\n"


_STATIC_INTRO = """
Every option of the static configuration, generated from the models in
proxynow/config/static.py (a test fails when this page and the models differ). Keys are
written as in Traefik's files (`entryPoints`, `certResolver`) and matched case-insensitively.
`<name>` is a name you choose; `[]` is a list of sections. "off" means the section is absent
unless written; writing it (even `ping: {}`) turns it on with the defaults shown. Durations
are Go durations (`10s`, `1m30s`, `500ms`) or seconds.

The same option is written in a file, as a flag or as a `PROXYNOW_*` variable
(`PROXYNOW_ENTRYPOINTS_WEB_ADDRESS=:443`); see [Configuring proxynow](configuration.md)
for sources, precedence and what each section does. A small static file:

```yaml
entryPoints:
  web:
    address: ":80"
    http:
      redirections:
        entryPoint:
          to: websecure
  websecure:
    address: ":443"
providers:
  docker:
    exposedByDefault: false
certificatesResolvers:
  le:
    acme:
      email: admin@example.com
      storage: /data/acme.json
      httpChallenge:
        entryPoint: web
api:
  dashboard: true
```
"""

_DYNAMIC_INTRO = """
Every option of the dynamic configuration, generated from the models in
proxynow/config/dynamic.py and proxynow/config/middlewares.py (a test fails when this page
and the models differ). The dynamic configuration comes from the file provider (YAML or
TOML, [providers-file.md](providers-file.md)) and from Docker labels
([labels.md](labels.md)); each example below is the label form, and the same keys nest in a
file. `<name>` is a name you choose, `[]` a list of sections (`[0]`, `[1]` in labels). A
service has exactly one of `loadBalancer`, `weighted`, `mirroring` and `failover`; a
middleware exactly one type ([middlewares.md](middlewares.md)). In labels a service's
server is the container (`loadbalancer.server.port`, [labels.md](labels.md)) rather than a
`servers` list, and TLS certificates, options and stores are written in files only. A
small dynamic file:

```yaml
http:
  routers:
    app:
      rule: Host(`example.com`)
      service: app
      middlewares: [compress]
  middlewares:
    compress:
      compress: {}
  services:
    app:
      loadBalancer:
        servers:
          - url: http://10.0.0.2:8080
```
"""

PAGES = (
    Page(
        "reference-static.md",
        StaticConfig,
        "Static configuration reference",
        _STATIC_INTRO,
        _flag,
    ),
    Page(
        "reference-dynamic.md",
        DynamicConfig,
        "Dynamic configuration reference",
        _DYNAMIC_INTRO,
        _label,
    ),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m proxynow.config.reference")
    parser.add_argument("--check", action="store_true", help="exit 1 if a page is stale")
    parser.add_argument("--docs", type=Path, default=DOCS, help="the docs folder")
    args = parser.parse_args(argv)
    stale = []
    for which in PAGES:
        target = args.docs / which.file
        text = page(which)
        if args.check:
            if not target.is_file() or target.read_text(encoding="utf-8") != text:
                stale.append(str(target))
        else:
            target.write_text(text, encoding="utf-8")
    for path in stale:
        print(
            f"{path} differs from the models: run python -m proxynow.config.reference",
            file=sys.stderr,
        )
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
