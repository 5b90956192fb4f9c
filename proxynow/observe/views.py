"""Per-name views of a worker's metrics, for the control socket and tests.

`with_views(collected)` adds to a `WorkerMetrics.collect()` result (edge/core/metrics.py) the
totals per entrypoint, router and service: "entrypoints" | "routers" | "services" ({name:
view}, see `_view`); entrypoint views add "open_connections" (HTTP) and
"tcp_open_connections". Made outside the worker's loop (the control plane's `metrics` op),
because it costs microseconds per row.
"""

from __future__ import annotations

from typing import Any

from proxynow.edge.core.metrics import split_key

__all__ = ["with_views"]


def with_views(collected: dict[str, Any]) -> dict[str, Any]:
    """`collected` and its per-name views."""
    if "targets" not in collected:
        return collected  # a worker that had no state yet
    n_buckets = len(collected["buckets"])
    return {**collected, **_views(collected["targets"], collected["open"], n_buckets)}


def _view(n_buckets: int) -> dict[str, Any]:
    """A name's totals: "requests" {status class: {method: n}} ("other" for a status
    outside 100-599), "codes" {status: n}, "duration" {"buckets" (per bucket, not
    cumulative, the last +Inf), "sum", "count"}, "bytes_in", "bytes_out", "retries"."""
    return {
        "requests": {},
        "codes": {},
        "duration": {"buckets": [0] * (n_buckets + 1), "sum": 0.0, "count": 0},
        "bytes_in": 0,
        "bytes_out": 0,
        "retries": 0,
    }


def _views(
    targets: list[list[Any]], open_connections: dict[str, list[int]], n_buckets: int
) -> dict[str, dict[str, dict[str, Any]]]:
    entrypoints: dict[str, dict[str, Any]] = {}
    for name, (http_open, tcp_open) in open_connections.items():
        view = entrypoints[name] = _view(n_buckets)
        view["open_connections"] = http_open
        view["tcp_open_connections"] = tcp_open
    routers: dict[str, dict[str, Any]] = {}
    services: dict[str, dict[str, Any]] = {}
    for ep_name, router, service, retries, rows in targets:
        views = [entrypoints[ep_name]]
        if router:
            views.append(routers.setdefault(router, _view(n_buckets)))
        if service:
            views.append(services.setdefault(service, _view(n_buckets)))
        for view in views:
            _merge(view, retries, rows)
    return {"entrypoints": entrypoints, "routers": routers, "services": services}


def _merge(view: dict[str, Any], retries: int, rows: list[list[float]]) -> None:
    view["retries"] += retries
    duration = view["duration"]
    buckets: list[int] = duration["buckets"]
    for key, count, seconds, bytes_in, bytes_out, *slow in rows:
        status, method, _, _ = split_key(int(key))
        status_class = f"{status // 100}xx" if 100 <= status < 600 else "other"
        by_method = view["requests"].setdefault(status_class, {})
        by_method[method] = by_method.get(method, 0) + int(count)
        code = str(status)
        view["codes"][code] = view["codes"].get(code, 0) + int(count)
        buckets[0] += int(count - sum(slow))
        for i, n in enumerate(slow, 1):
            buckets[i] += int(n)
        duration["sum"] += seconds
        duration["count"] += int(count)
        view["bytes_in"] += int(bytes_in)
        view["bytes_out"] += int(bytes_out)
