"""Filtering, sorting and paging of API lists, with Traefik v3.7's parameters.

Pure functions over the items of proxynow/api/shapes.py:
- `keep(kind, item, query)`: `search` (case-insensitive substring of the name, and of the
  rule for routers), `status` (exact, case-insensitive), and for routers `serviceName`
  and `middlewareName`;
- `sort_items(kind, items, query)`: `sortBy` (routers: name, provider, priority, status,
  rule, service, entryPoints; services: name, type, servers, provider, status;
  middlewares: name, type, provider, status; anything else: name) and `direction`
  (`asc`, the default, or anything else for descending), ties by name in the same order;
- `keep_certificate` and `sort_certificates`: the same for `/api/certificates`, as Traefik's
  handler_certificate.go: `search` in the common name, issuer and SANs, `status`; `sortBy`
  `name` (common name, the default), `status`, `issuer`, `validUntil` (notAfter);
- `page(count, query)`: `page` (1) and `per_page` (100); a value that is not a positive
  integer, or a page past the end, is an `ApiError` 400; the next page (`X-Next-Page`)
  is 1 on the last one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_PER_PAGE",
    "ApiError",
    "Page",
    "keep",
    "keep_certificate",
    "page",
    "sort_certificates",
    "sort_items",
]

DEFAULT_PER_PAGE = 100

Item = dict[str, Any]
Query = Mapping[str, str]


class ApiError(Exception):
    """An answer `{"message": ...}` with `status`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Page:
    start: int
    end: int
    next: int


def keep(section: str, item: Item, query: Query) -> bool:
    """Whether `item` passes the filters in `query`."""
    status = query.get("status", "")
    if status and item.get("status", "").lower() != status.lower():
        return False
    search = query.get("search", "").lower()
    if search:
        texts = [item["name"], item.get("rule", "")] if section == "routers" else [item["name"]]
        if not any(search in text.lower() for text in texts):
            return False
    if section != "routers":
        return True
    service = query.get("serviceName", "")
    if service and not _same_name(service, item.get("service", "")):
        return False
    middleware = query.get("middlewareName", "")
    return not middleware or any(_same_name(middleware, m) for m in item.get("middlewares", []))


def _same_name(wanted: str, name: str) -> bool:
    """`svc@file` matches `svc@file`; `svc` (no provider) matches `svc` of any provider."""
    return wanted == name or ("@" not in wanted and name.partition("@")[0] == wanted)


def _servers(item: Item) -> int:
    return len(item.get("loadBalancer", {}).get("servers", []))


_KEYS: dict[str, dict[str, Callable[[Item], Any]]] = {
    "routers": {
        "provider": lambda i: i["provider"],
        "priority": lambda i: i.get("priority", 0),
        "status": lambda i: i["status"],
        "rule": lambda i: i.get("rule", ""),
        "service": lambda i: i.get("service", ""),
        "entryPoints": lambda i: len(i.get("entryPoints", [])),
    },
    "services": {
        "type": lambda i: i.get("type", ""),
        "servers": _servers,
        "provider": lambda i: i["provider"],
        "status": lambda i: i["status"],
    },
    "middlewares": {
        "type": lambda i: i.get("type", ""),
        "provider": lambda i: i["provider"],
        "status": lambda i: i["status"],
    },
}


def sort_items(section: str, items: list[Item], query: Query) -> list[Item]:
    """`items` in the order `sortBy` and `direction` ask for."""
    descending = query.get("direction", "asc") not in ("", "asc")
    key = _KEYS.get(section, {}).get(query.get("sortBy", ""))
    if key is None:
        return sorted(items, key=lambda i: i["name"], reverse=descending)
    return sorted(items, key=lambda i: (key(i), i["name"]), reverse=descending)


def keep_certificate(cert: Item, query: Query) -> bool:
    status = query.get("status", "")
    if status and cert["status"].lower() != status.lower():
        return False
    search = query.get("search", "").lower()
    fields = [cert["commonName"], cert.get("issuerOrg", ""), cert.get("issuerCN", "")]
    return not search or any(search in text.lower() for text in [*fields, *cert["sans"]])


_CERTIFICATE_KEYS: dict[str, Callable[[Item], Any]] = {
    "name": lambda c: c["commonName"],
    "status": lambda c: c["status"],
    "issuer": lambda c: c.get("issuerOrg") or c.get("issuerCN", ""),
    "validUntil": lambda c: c["notAfter"],  # RFC 3339 in UTC sorts as text
}


def sort_certificates(certs: list[Item], query: Query) -> list[Item]:
    descending = query.get("direction", "asc") not in ("", "asc")
    key = _CERTIFICATE_KEYS.get(query.get("sortBy", ""), _CERTIFICATE_KEYS["name"])
    return sorted(certs, key=lambda c: (key(c), c["name"]), reverse=descending)


def page(count: int, query: Query) -> Page:
    """The slice of `count` items that `page` and `per_page` select."""
    per_page = _positive(query, "per_page", DEFAULT_PER_PAGE)
    number = _positive(query, "page", 1)
    start = (number - 1) * per_page
    if start and start >= count:
        raise ApiError(400, f"invalid request: page: {number}, per_page: {per_page}")
    end = min(start + per_page, count)
    return Page(start, end, number + 1 if number * per_page < count else 1)


def _positive(query: Query, key: str, default: int) -> int:
    raw = query.get(key, "")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0  # Traefik prints the failed parse as 0
    if value <= 0 or not raw.lstrip("+-").isdigit():
        raise ApiError(400, f"invalid request: {key}: {value}")
    return value
