"""Traefik's Prometheus metric families, under the `proxynow_` prefix, from our totals.

`families(totals, control, servers, options)` is pure: the request series of `Totals`
(proxynow/observe/totals.py) projected onto the label sets Traefik gives each level
(pkg/observability/metrics/prometheus.go in Traefik names them):

- entrypoint (`addEntryPointsLabels`, on by default): code, method, protocol, entrypoint;
- router (`addRoutersLabels`, off by default): code, method, protocol, router, service;
- service (`addServicesLabels`, on by default): code, method, protocol, service; plus
  `service_retries_total{service}` and `service_server_up{service,url}`.

Each level has requests_total, request_duration_seconds (a histogram with the configured
buckets), requests_bytes_total, responses_bytes_total, and requests_tls_total labelled
tls_version, tls_cipher instead of code, method, protocol. Requests that matched no router
count at the entrypoint only, and, as Traefik does without `addInternals`, requests served
by an internal service (`...@internal`) count at the entrypoint only. Always present:
config_reloads_total, config_last_reload_success, open_connections{entrypoint,protocol}
(protocol TCP: every connection an entrypoint holds), tls_certs_not_after{cn,serial,sans},
and ours, routing_duration_seconds{entrypoint}: the router lookups the workers time (the
first request of each connection, and the first after a configuration change).

With `headerLabels`, every request family of every level (and the TLS ones) has one more
label per configured header, after the level's own, in label-name order: the header's
value, empty when the request had none, `other` for the combinations past the cap
(proxynow/observe/totals.py `LabelCap`).

Histogram bounds are written as Go writes them (`5`, not `5.0`), so a query copied from a
Traefik dashboard (`le="5"`) finds them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from proxynow.config.static import Prometheus
from proxynow.edge.core.metrics import ROUTING_BUCKETS
from proxynow.observe.control import ControlStats
from proxynow.observe.totals import HttpKey, TlsKey, Totals

__all__ = ["PREFIX", "families", "go_float"]

PREFIX = "proxynow_"
_LABELS = ("code", "method", "protocol")
_TLS_LABELS = ("tls_version", "tls_cipher")


@dataclass(frozen=True, slots=True)
class _Level:
    """One level of request metrics: its name and how a series key maps to its labels."""

    name: str
    labels: tuple[str, ...]  # the level's own labels, after code, method, protocol
    own: Callable[[tuple[str, str, str]], tuple[str, ...] | None]  # None: not counted here
    what: str


def _entrypoint(target: tuple[str, str, str]) -> tuple[str, ...] | None:
    return (target[0],)


def _router(target: tuple[str, str, str]) -> tuple[str, ...] | None:
    _, router, service = target
    return (router, service) if router and not service.endswith("@internal") else None


def _service(target: tuple[str, str, str]) -> tuple[str, ...] | None:
    service = target[2]
    return (service,) if service and not service.endswith("@internal") else None


_ENTRYPOINT = _Level("entrypoint", ("entrypoint",), _entrypoint, "an entrypoint")
_ROUTER = _Level("router", ("router", "service"), _router, "a router")
_SERVICE = _Level("service", ("service",), _service, "a service")


def go_float(value: float) -> str:
    """A float as Go's Prometheus client writes a bound: the shortest form, `5` not `5.0`
    (Go's strconv 'g'; Python's repr turns to an exponent at 1e16 where Go waits for 1e21,
    which no bucket bound reaches)."""
    if value == float("inf"):
        return "+Inf"
    text = repr(float(value))
    if "e" not in text and "inf" not in text and "nan" not in text:
        return text[:-2] if text.endswith(".0") else text
    mantissa, _, exponent = text.partition("e")
    sign = "-" if exponent.startswith("-") else "+"
    digits = exponent.lstrip("+-")
    return f"{mantissa.removesuffix('.0')}e{sign}{digits.zfill(2)}"


def families(
    totals: Totals,
    control: ControlStats,
    servers: Mapping[tuple[str, str], bool],
    options: Prometheus,
) -> Iterator[Metric]:
    """Every family Traefik exports, with its options honoured."""
    yield from _server_families(totals, control)
    levels = [
        (options.add_entry_points_labels, _ENTRYPOINT),
        (options.add_routers_labels, _ROUTER),
        (options.add_services_labels, _SERVICE),
    ]
    headers = tuple(sorted(options.header_labels))
    for enabled, level in levels:
        if enabled:
            yield from _request_families(totals, level, headers)
    if options.add_services_labels:
        yield _retries(totals)
        yield _server_up(servers)
    yield _routing(totals)


def _server_families(totals: Totals, control: ControlStats) -> Iterator[Metric]:
    reloads = CounterMetricFamily(
        f"{PREFIX}config_reloads_total", "Dynamic configurations applied since start."
    )
    reloads.add_metric([], control.reloads)
    yield reloads
    last = GaugeMetricFamily(
        f"{PREFIX}config_last_reload_success",
        "Unix time the last dynamic configuration was applied.",
    )
    last.add_metric([], control.last_reload)
    yield last
    connections = GaugeMetricFamily(
        f"{PREFIX}open_connections",
        "Connections open now, by entrypoint and protocol.",
        labels=["entrypoint", "protocol"],
    )
    for entrypoint, count in sorted(totals.open_connections.items()):
        connections.add_metric([entrypoint, "TCP"], count)
    yield connections
    certs = GaugeMetricFamily(
        f"{PREFIX}tls_certs_not_after",
        "Unix time a certificate expires.",
        labels=["cn", "serial", "sans"],
    )
    for cert in control.certificates:
        certs.add_metric([cert.cn, cert.serial, cert.sans], cert.not_after)
    yield certs


def _request_families(totals: Totals, level: _Level, headers: tuple[str, ...]) -> Iterator[Metric]:
    rows = _project(totals.http, level)
    labels = [*_LABELS, *level.labels, *headers]
    prefix = f"{PREFIX}{level.name}_"
    requests = CounterMetricFamily(
        f"{prefix}requests_total", f"HTTP requests {level.what} handled.", labels=labels
    )
    durations = HistogramMetricFamily(
        f"{prefix}request_duration_seconds",
        f"Time {level.what} took to answer HTTP requests, in seconds.",
        labels=labels,
    )
    bytes_in = CounterMetricFamily(
        f"{prefix}requests_bytes_total", f"Request body bytes {level.what} received.", labels=labels
    )
    bytes_out = CounterMetricFamily(
        f"{prefix}responses_bytes_total", f"Response bytes {level.what} sent.", labels=labels
    )
    bounds = [go_float(bound) for bound in totals.buckets]
    for values, row in sorted(rows.items()):
        count, seconds, received, sent, *slow = row
        requests.add_metric(values, count)
        durations.add_metric(values, _cumulative(bounds, count, slow), seconds)
        bytes_in.add_metric(values, received)
        bytes_out.add_metric(values, sent)
    yield requests
    yield _tls_family(totals.tls, level, headers)
    yield durations
    yield bytes_in
    yield bytes_out


def _project(
    http: Mapping[HttpKey, list[float]], level: _Level
) -> dict[tuple[str, ...], list[float]]:
    """The rows summed by the level's label values (code, method, protocol, own...,
    header values...)."""
    rows: dict[tuple[str, ...], list[float]] = {}
    for (entrypoint, router, service, code, method, protocol, headers), row in http.items():
        own = level.own((entrypoint, router, service))
        if own is None:
            continue
        values = (code, method, protocol, *own, *headers)
        mine = rows.get(values)
        if mine is None:
            rows[values] = list(row)
        else:
            for i, value in enumerate(row):
                mine[i] += value
    return rows


def _cumulative(bounds: list[str], count: float, slow: list[float]) -> list[tuple[str, float]]:
    """Prometheus buckets (cumulative, ending with +Inf) from per-bucket counts."""
    below = count - sum(slow)
    buckets = [(bounds[0], below)] if bounds else []
    for bound, n in zip(bounds[1:], slow, strict=False):
        below += n
        buckets.append((bound, below))
    buckets.append(("+Inf", count))
    return buckets


def _tls_family(tls: Mapping[TlsKey, float], level: _Level, headers: tuple[str, ...]) -> Metric:
    family = CounterMetricFamily(
        f"{PREFIX}{level.name}_requests_tls_total",
        f"HTTPS requests {level.what} handled, by TLS version and cipher.",
        labels=[*_TLS_LABELS, *level.labels, *headers],
    )
    sums: dict[tuple[str, ...], float] = {}
    for (entrypoint, router, service, version, cipher, values_of), count in tls.items():
        own = level.own((entrypoint, router, service))
        if own is not None:
            values = (version, cipher, *own, *values_of)
            sums[values] = sums.get(values, 0) + count
    for values, count in sorted(sums.items()):
        family.add_metric(values, count)
    return family


def _routing(totals: Totals) -> Metric:
    family = HistogramMetricFamily(
        f"{PREFIX}routing_duration_seconds",
        "Time to find a request's router (sampled: a connection's first request).",
        labels=["entrypoint"],
    )
    bounds = [go_float(bound) for bound in ROUTING_BUCKETS]
    for entrypoint, (count, seconds, *slow) in sorted(totals.routing.items()):
        family.add_metric([entrypoint], _cumulative(bounds, count, slow), seconds)
    return family


def _retries(totals: Totals) -> Metric:
    family = CounterMetricFamily(
        f"{PREFIX}service_retries_total",
        "Requests a service sent again to a server.",
        labels=["service"],
    )
    for service, count in sorted(totals.retries.items()):
        family.add_metric([service], count)
    return family


def _server_up(servers: Mapping[tuple[str, str], bool]) -> Metric:
    family = GaugeMetricFamily(
        f"{PREFIX}service_server_up",
        "1 while an active health check finds a server up, 0 while down.",
        labels=["service", "url"],
    )
    for (service, url), up in sorted(servers.items()):
        family.add_metric([service, url], 1.0 if up else 0.0)
    return family
