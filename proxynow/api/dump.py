"""Configuration models as the API shows them: Traefik's JSON, with every secret redacted.

`dump(model)` turns a configuration model into the JSON object Traefik's API prints for
the same configuration: camelCase keys, empty values left out (Go's `omitempty`: `false`,
`0`, `""`, empty lists and maps; a nested object is kept even when empty, as Go keeps a
non-nil pointer to a struct), and durations as Go prints them (`100ms`, `1m0s`).

Then `redact` removes what must never leave the process, whatever the endpoint
(docs/api.md, "Secrets"): the password hashes of `basicAuth` / `digestAuth` users (the
user names stay), private keys (`key`, `keyFile`: inline PEM is allowed there),
`hmacEncoded`, `password`, the password in a URL's user info, and the values of headers
that carry credentials (`Authorization`, `Cookie`, names with `token`, `secret`, `key`...).
Traefik shows all of these; an API answer ends up in screenshots, bug reports and
browser caches, so proxynow does not.
"""

from __future__ import annotations

import functools
import re
import typing
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from proxynow.config.base import parse_duration

__all__ = ["REDACTED", "dump", "go_duration", "redact", "redact_url"]

REDACTED = "REDACTED"

_NS = 1_000_000_000


def go_duration(seconds: float) -> str:
    """Seconds as Go's `time.Duration.String()` prints them: `0s`, `100ms`, `1m30s`."""
    ns = round(seconds * _NS)
    if ns == 0:
        return "0s"
    sign, ns = ("-" if ns < 0 else ""), abs(ns)
    if ns < 1_000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{_fraction(ns, 1_000)}µs"
    if ns < _NS:
        return f"{sign}{_fraction(ns, 1_000_000)}ms"
    hours, rest = divmod(ns, 3600 * _NS)
    minutes, rest = divmod(rest, 60 * _NS)
    text = f"{hours}h" if hours else ""
    if hours or minutes:
        text += f"{minutes}m"
    return f"{sign}{text}{_fraction(rest, _NS)}s"


def _fraction(value: int, unit: int) -> str:
    whole, part = divmod(value, unit)
    if not part:
        return str(whole)
    digits = str(part).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


# ---------------------------------------------------------------- models to JSON


def dump(model: BaseModel) -> dict[str, Any]:
    """`model` as Traefik's JSON (keys by alias, `omitempty`, Go durations)."""
    out: dict[str, Any] = {}
    for name, info in type(model).model_fields.items():
        raw = getattr(model, name)
        # A boolean whose default is true or unset is a `*bool` in Traefik: `false` is shown
        # (passHostHeader, observability.accessLogs).
        pointer = raw is False and info.default in (True, None)
        if raw is None or (not isinstance(raw, BaseModel) and _empty(raw) and not pointer):
            continue
        out[info.alias or name] = _value(raw, _is_duration(type(model), name, info))
    return out


def _value(value: Any, duration: bool) -> Any:
    if isinstance(value, BaseModel):
        return dump(value)
    if isinstance(value, Mapping):
        return {str(k): _value(v, duration) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_value(v, duration) for v in value]
    if duration and isinstance(value, float):
        return go_duration(value)
    return value


def _empty(value: Any) -> bool:
    """Go's `omitempty`: false, zero, "" and empty lists or maps."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float | str | list | tuple | Mapping):
        return not value
    return value is None


@functools.cache
def _is_duration(owner: type, name: str, info: FieldInfo) -> bool:
    """Whether the field is a `config.base.Duration` (also inside `Duration | None`)."""
    del owner, name  # part of the cache key only: FieldInfo objects are not shared
    if _has_duration_validator(info.metadata):
        return True
    return any(
        _has_duration_validator(getattr(arg, "__metadata__", ()))
        for arg in typing.get_args(info.annotation)
    )


def _has_duration_validator(metadata: Any) -> bool:
    return any(getattr(item, "func", None) is parse_duration for item in metadata)


# ---------------------------------------------------------------- redaction

_SECRET_KEYS = frozenset({"key", "keyFile", "hmacEncoded", "password", "secret", "token"})
_USER_LISTS = frozenset({"users"})
_HEADER_MAPS = frozenset(
    {"customRequestHeaders", "customResponseHeaders", "headers", "sslProxyHeaders"}
)
_URL_KEYS = frozenset({"url", "address", "endpoint"})
_CREDENTIAL_HEADER = re.compile(
    r"^(authorization|proxy-authorization|cookie|set-cookie)$|token|secret|key|passw|auth",
    re.IGNORECASE,
)


def redact(value: Any, key: str = "") -> Any:
    """A copy of a dumped configuration with every secret replaced by `REDACTED`."""
    if isinstance(value, dict):
        # `headers` is also the headers middleware's own key: only string values are headers.
        headers = key in _HEADER_MAPS
        return {
            k: _header_value(k, v) if headers and isinstance(v, str) else redact(v, k)
            for k, v in value.items()
        }
    if isinstance(value, list):
        if key in _USER_LISTS:
            return [_user(entry) for entry in value]
        return [redact(v, key) for v in value]
    if isinstance(value, str) and value:
        if key in _SECRET_KEYS:
            return REDACTED
        if key in _URL_KEYS:
            return redact_url(value)
    return value


def _user(entry: Any) -> Any:
    """`user:hash` → `user:REDACTED`; digest's `user:realm:hash` keeps its realm."""
    if not isinstance(entry, str):
        return REDACTED
    head, sep, _ = entry.rpartition(":")
    return f"{head}{sep}{REDACTED}" if sep else REDACTED


def _header_value(name: str, value: str) -> str:
    return REDACTED if value and _CREDENTIAL_HEADER.search(name) else value


def redact_url(value: str) -> str:
    """A URL without the password of its user info (`http://u:REDACTED@host`)."""
    if "@" not in value:
        return value
    try:
        parts = urlsplit(value)
        password = parts.password
    except ValueError:
        return REDACTED
    if not password:
        return value
    netloc = f"{parts.username}:{REDACTED}@{parts.netloc.rpartition('@')[2]}"
    return urlunsplit(parts._replace(netloc=netloc))
