"""One API request to its answer, without sockets: the routing of Traefik v3.7's paths.

`answer(view, method, path, query, prefix)` takes the request path as sent (percent-
encoded: a name with `%2F` stays one segment, and is then decoded, as Traefik's
`UseEncodedPath` router does) and returns an `Answer`. The paths, under `prefix`
(`api.basePath` + `/api`):

    /overview  /rawdata  /version  /entrypoints[/{name}]
    /http/{routers,services,middlewares}[/{name}]
    /tcp/{routers,services,middlewares}[/{name}]
    /udp/{routers,services}[/{name}]
    /certificates[/{id}]   (id: the certificate's SHA-256 fingerprint, proxynow/api/certificates.py)

Lists are filtered, sorted and paged (proxynow/api/query.py) and carry `X-Next-Page`;
an unknown name is 404 `{"message": "router not found: x@file"}`; an unknown path is 404,
a method other than GET or HEAD 405. `ping_answer` is /ping: 200 `OK`, or the
`terminatingStatusCode` (503) while the proxy drains.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from proxynow.api.certificates import with_status
from proxynow.api.query import (
    ApiError,
    Query,
    keep,
    keep_certificate,
    page,
    sort_certificates,
    sort_items,
)
from proxynow.api.shapes import KINDS, View

__all__ = ["Answer", "answer", "ping_answer"]

_JSON = "application/json"
_SINGULAR = {"routers": "router", "services": "service", "middlewares": "middleware"}
_STATUS_TEXT = {200: "OK", 503: "Service Unavailable"}


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    content_type: str = _JSON
    headers: Mapping[str, str] = field(default_factory=dict)


def _json(value: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Answer:
    # Go's json.Encoder: compact, one trailing newline.
    body = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
    return Answer(status, body, _JSON, headers or {})


def _error(error: ApiError) -> Answer:
    return _json({"message": error.message}, error.status)


def answer(
    view: View,
    method: str,
    path: str,
    query: Query,
    prefix: str = "/api",
    now: datetime | None = None,
) -> Answer:
    """The answer to `method path?query` (path percent-encoded, starting with `prefix`);
    `now` dates the certificates' statuses (the current time if None)."""
    if not (path == prefix or path.startswith(prefix + "/")):
        return Answer(404, b"404 page not found\n", "text/plain; charset=utf-8")
    if method not in ("GET", "HEAD"):
        return Answer(405, b"", "text/plain; charset=utf-8")
    segments = path[len(prefix) :].strip("/").split("/")
    try:
        return _route(view, segments, query, now or datetime.now(UTC))
    except ApiError as exc:
        return _error(exc)


def _route(view: View, segments: list[str], query: Query, now: datetime) -> Answer:
    match segments:
        case ["certificates"]:
            certs = [with_status(cert, now) for cert in view.certificates.values()]
            kept = [cert for cert in certs if keep_certificate(cert, query)]
            return _paged(sort_certificates(kept, query), query)
        case ["certificates", name]:
            cert = view.certificates.get(unquote(name))
            if cert is None:
                raise ApiError(404, f"certificate not found: {unquote(name)}")
            return _json(with_status(cert, now))
        case ["overview"]:
            return _json(view.overview)
        case ["rawdata"]:
            return _json(view.rawdata())
        case ["version"]:
            return _json(view.version)
        case ["entrypoints"]:
            return _paged(list(view.entry_points.values()), query)
        case ["entrypoints", name]:
            return _one(view.entry_points, "entry point", unquote(name))
        case [protocol, section] if (protocol, section) in KINDS:
            return _list(view, protocol, section, query)
        case [protocol, section, name] if (protocol, section) in KINDS:
            table = view.items[protocol, section]
            return _one(table, _SINGULAR[section], unquote(name))
    return Answer(404, b"404 page not found\n", "text/plain; charset=utf-8")


def _one(table: Mapping[str, Any], what: str, name: str) -> Answer:
    item = table.get(name)
    if item is None:
        raise ApiError(404, f"{what} not found: {name}")
    return _json(item)


def _list(view: View, protocol: str, section: str, query: Query) -> Answer:
    items = [item for item in view.items[protocol, section].values() if keep(section, item, query)]
    return _paged(sort_items(section, items, query), query)


def _paged(items: list[Any], query: Query) -> Answer:
    selected = page(len(items), query)
    return _json(items[selected.start : selected.end], headers={"X-Next-Page": str(selected.next)})


def ping_answer(draining: bool, terminating_status: int = 503) -> Answer:
    """/ping: `OK`, or the terminating status while the proxy drains."""
    status = terminating_status if draining else 200
    text = _STATUS_TEXT.get(status, str(status))
    return Answer(status, text.encode(), "text/plain; charset=utf-8")
