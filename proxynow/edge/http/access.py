"""The access log: one line per finished exchange, in Traefik's formats, with its field rules.

`AccessLog.record` is called by dispatch (edge/proxy/dispatch.py) where an exchange ends,
only when the front end has an access log (`downstream.access_log is not None`: the one test
a request pays when it is off). It builds Traefik's fields (pkg/middlewares/accesslog/
logdata.go names them: `StartUTC`, `Duration`, `RouterName`, `ClientHost`, ...), applies
`filters` (status ranges, retries, minimum duration: any one keeps the line) and `fields`
(`defaultMode`/`names` for those fields, `headers.defaultMode`/`names` for the
`request_`, `origin_` and `downstream_` headers, dropped unless kept), formats the line
(`common`, `genericCLF` or `json`) and hands it to a `LineWriter` (edge/core/linewriter.py):
no write, no await on the event loop.

Pure apart from the clock read it does once per line (the start's wall-clock time).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from proxynow.config.static import AccessLog as AccessLogConfig
from proxynow.edge.http.access_lines import (
    CLIENT_CLOSED,
    GO_JSON,
    ClfLines,
    Connection,
    JsonLines,
    LineBuffer,
    Lines,
    Second,
    client_fields,
    go_quote,
    go_stamp,
    nanoseconds,
    second_of,
    service_addr,
    split_host_port,
    tls_fields,
)

if TYPE_CHECKING:
    from proxynow.config.dynamic import Router
    from proxynow.edge.core.metrics import TargetStats, WorkerMetrics
    from proxynow.edge.http.exchange import Exchange
    from proxynow.edge.message.headers import ResponseHead

__all__ = [
    "FIELD_NAMES",
    "AccessLog",
    "FieldRules",
    "Filters",
    "LineSink",
    "Second",
    "canonical_header",
    "format_common",
    "format_generic_clf",
    "format_json",
    "go_quote",
    "go_stamp",
    "parse_status_ranges",
    "second_of",
]

log = logging.getLogger(__name__)

KEEP, DROP, REDACT = "keep", "drop", "redact"
# Every field a line can have besides the headers (Traefik's logdata.go names).
FIELD_NAMES = (
    "StartUTC", "StartLocal", "Duration", "RouterName", "ServiceName", "ServiceURL",
    "ServiceAddr", "ClientAddr", "ClientHost", "ClientPort", "ClientUsername", "RequestAddr",
    "RequestHost", "RequestPort", "RequestMethod", "RequestPath", "RequestProtocol",
    "RequestScheme", "RequestContentSize", "OriginDuration", "OriginContentSize",
    "OriginStatus", "DownstreamStatus", "DownstreamContentSize", "RequestCount", "GzipRatio",
    "Overhead", "RetryAttempts", "TLSVersion", "TLSCipher", "entryPointName",
)  # fmt: skip
REDACTED = "REDACTED"


class Record(Protocol):
    """`AccessLog.record`: log `exchange`, over at loop time `now`; `origin` is the
    backend's response head when the response came from the backend (None: answered by
    proxynow); `abandoned`: the client left before any response (logged as 499)."""

    def __call__(
        self,
        downstream: Connection,
        exchange: Exchange,
        now: float,
        origin: ResponseHead | None,
        abandoned: bool = False,
    ) -> None: ...


class LineSink(Protocol):
    """Where batches of lines go (edge/core/linewriter.py `LineWriter`: never blocks the
    loop)."""

    @property
    def dropped(self) -> int: ...
    @property
    def error(self) -> str: ...  # why lines were lost, if the writer knows
    def submit(self, lines: list[str], size: int) -> None: ...
    def reopen(self) -> None: ...
    def close(self) -> None: ...


# ------------------------------------------------------------------ configuration


def parse_status_ranges(codes: Iterable[str]) -> tuple[tuple[int, int], ...]:
    """`["200", "300-302"]` → ((200, 200), (300, 302)), as Traefik's HTTPCodeRanges; a
    malformed entry raises ValueError (the static configuration is refused)."""
    ranges = []
    for code in codes:
        for part in code.split(","):
            low, sep, high = part.strip().partition("-")
            first = int(low)
            last = int(high) if sep else first
            if not 100 <= first <= last <= 999:
                raise ValueError(f"invalid status code range {part!r}")
            ranges.append((first, last))
    return tuple(ranges)


@dataclass(frozen=True, slots=True)
class Filters:
    """A line is kept if any filter set matches it; no filter set keeps every line."""

    status: tuple[tuple[int, int], ...] = ()
    retry_attempts: bool = False
    min_duration: float = 0.0  # seconds

    @property
    def empty(self) -> bool:
        return not self.status and not self.retry_attempts and not self.min_duration

    def keep(self, status: int, retries: int, duration: float) -> bool:
        if self.empty:
            return True
        if any(low <= status <= high for low, high in self.status):
            return True
        if self.retry_attempts and retries > 0:
            return True
        return bool(self.min_duration) and duration > self.min_duration


def canonical_header(name: str) -> str:
    """Go's CanonicalMIMEHeaderKey: `x-real-ip` → `X-Real-Ip` (names with a space or
    a byte outside token characters are left as they are)."""
    if not name or any(c in name for c in " \t") or not name.isascii():
        return name
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


@dataclass(frozen=True, slots=True)
class FieldRules:
    """`fields`: a mode per core field (case-insensitive names) and per header."""

    default_mode: str = KEEP
    names: Mapping[str, str] | None = None  # lowercased field name → mode
    header_default: str = DROP
    header_names: Mapping[str, str] | None = None  # canonical header name → mode

    def keep(self, field: str) -> bool:
        """Traefik's rule: `redact` on a core field means the default mode."""
        default = self.default_mode != DROP
        mode = (self.names or {}).get(field.lower())
        if mode == KEEP:
            return True
        if mode == DROP:
            return False
        return default

    def header_mode(self, name: str) -> str:
        return (self.header_names or {}).get(name, self.header_default)

    @property
    def headers_shown(self) -> bool:
        """Whether any header can reach a line (else they are not even collected)."""
        return self.header_default != DROP or any(
            mode != DROP for mode in (self.header_names or {}).values()
        )


def rules_from(config: AccessLogConfig) -> tuple[Filters, FieldRules]:
    filters = Filters()
    if config.filters is not None:
        f = config.filters
        filters = Filters(parse_status_ranges(f.status_codes), f.retry_attempts, f.min_duration)
    rules = FieldRules()
    fields = config.fields
    if fields is not None:
        headers = fields.headers
        rules = FieldRules(
            default_mode=fields.default_mode,
            names={name.lower(): mode for name, mode in fields.names.items()},
            header_default=headers.default_mode if headers is not None else DROP,
            header_names=(
                {canonical_header(n): m for n, m in headers.names.items()}
                if headers is not None
                else None
            ),
        )
    return filters, rules


# ------------------------------------------------------------------ formats


class _Seconds:
    """The last `Second` asked for: lines of one second share it."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last = second_of(0)

    def get(self, epoch: int) -> Second:
        last = self.last
        if last.epoch != epoch:
            last = self.last = second_of(epoch)
        return last


def _plain(fields: Mapping[str, Any], key: str) -> str:
    value = fields.get(key)
    if value is None or value == "":
        return "-"
    return str(value)


def _quoted(fields: Mapping[str, Any], key: str) -> str:
    value = fields.get(key)
    if value is None or value == "":
        return '"-"'
    return go_quote(str(value))


def _clf_head(fields: Mapping[str, Any], start: Second) -> str:
    """The part common and genericCLF share: host, user, time, request line, status, size,
    referer, user agent (Traefik reads the kept fields: a dropped one shows `-`)."""
    if "StartUTC" in fields:
        stamp = start.clf_utc
    elif "StartLocal" in fields:
        stamp = start.clf_local
    else:
        stamp = "-"
    return (
        f"{_plain(fields, 'ClientHost')} - {_plain(fields, 'ClientUsername')} [{stamp}] "
        f'"{_plain(fields, "RequestMethod")} {_plain(fields, "RequestPath")} '
        f'{_plain(fields, "RequestProtocol")}" {_plain(fields, "DownstreamStatus")} '
        f"{_plain(fields, 'DownstreamContentSize')} {_quoted(fields, 'request_Referer')} "
        f"{_quoted(fields, 'request_User-Agent')}"
    )


def format_generic_clf(fields: Mapping[str, Any], start: Second, now: Second) -> str:
    """NCSA combined: `host - user [time] "METHOD path PROTO" status size "referer" "ua"`."""
    return _clf_head(fields, start) + "\n"


def format_common(fields: Mapping[str, Any], start: Second, now: Second) -> str:
    """genericCLF, then the request count, router, server URL and duration in ms."""
    duration = fields.get("Duration")
    millis = duration // 1_000_000 if isinstance(duration, int) else 0
    return (
        f"{_clf_head(fields, start)} {_plain(fields, 'RequestCount')} "
        f"{_quoted(fields, 'RouterName')} {_quoted(fields, 'ServiceURL')} {millis}ms\n"
    )


def format_json(fields: dict[str, Any], start: Second, now: Second) -> str:
    """One JSON object, keys sorted, Go's escaping (`&`, `<`, `>` as \\u00XX), plus
    `level`, `msg` and `time` as Traefik's logger adds them (`fields` gets them too)."""
    fields["level"] = "info"
    fields["msg"] = ""
    fields["time"] = now.local + now.zone
    text = _JSON.encode(fields)
    if not text.isascii() or "&" in text or "<" in text or ">" in text:
        text = text.translate(GO_JSON)  # rare: most lines have none of these
    return text + "\n"


_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)


# ------------------------------------------------------------------ the log


class AccessLog:
    """One worker's access log: fields from an exchange, filters, format, writer."""

    __slots__ = (
        "_addresses",
        "_clock",
        "_dropped",
        "_fast",
        "_filtered",
        "_format",
        "_headers_shown",
        "_names",
        "_reported",
        "_seconds",
        "add_internals",
        "buffer",
        "count",
        "filters",
        "record",
        "rules",
        "writer",
    )

    def __init__(
        self,
        config: AccessLogConfig,
        writer: LineSink,
        metrics: WorkerMetrics,
        routers: Callable[[], Mapping[str, Router]] | None = None,
        clock: Callable[[], int] = time.time_ns,
        fast: bool = True,
        later: Callable[[float, Callable[[], None]], object] | None = None,
    ) -> None:
        """`clock`: wall-clock nanoseconds; `fast=False` keeps every line on the general
        formatters (the tests compare both paths line for line); `later`: the loop's
        `call_later`, for the batches' timer (without it a line goes to `writer` at once)."""
        self.filters, self.rules = rules_from(config)
        self._clock = clock
        self.writer = writer
        # The lines not handed to the writer yet (one list append per line).
        self.buffer = LineBuffer(writer, config.buffering_size, later)
        self.add_internals = config.add_internals
        self.count = 0  # Traefik's RequestCount: here per worker process
        self._format = _FORMATS.get(config.format, format_common)
        # The fields `fields` drops, worked out once: a line then pops them (usually none).
        self._dropped = tuple(name for name in FIELD_NAMES if not self.rules.keep(name))
        self._seconds = _Seconds()
        self._headers_shown = self.rules.headers_shown
        self._filtered = not self.filters.empty
        self._addresses: dict[str, str] = {}  # server URL -> ServiceAddr
        self._names = _RouterNames(metrics, routers, config.add_internals)
        self._reported = 0  # dropped lines already warned about
        # Every core field and no header (the defaults): the line is built straight from
        # the exchange (edge/http/access_lines.py), else from a dictionary of the fields.
        # `record` is then the fast path's own (its call is the only one a request makes).
        self._fast: Lines | None = None
        self.record: Record = self._record
        if fast and not self._dropped and not self._headers_shown:
            lines = self._fast = _FAST[config.format]()
            lines.clock, lines.names, lines.writer = clock, self._names, self.buffer
            lines.filters = self.filters if self._filtered else None
            self.record = lines.record

    def _record(
        self,
        downstream: Connection,
        exchange: Exchange,
        now: float,
        origin: ResponseHead | None,
        abandoned: bool = False,
    ) -> None:
        """`record` on the general path: log `exchange`, over at loop time `now`; `origin`
        is the backend's response head when the response came from the backend (None:
        answered by proxynow)."""
        self.count += 1
        status = exchange.status or (CLIENT_CLOSED if abandoned else 0)
        duration = now - exchange.start
        if duration < 0.0:
            duration = 0.0
        if self._filtered and not self.filters.keep(status, 1 if exchange.retried else 0, duration):
            return
        names = self._names[exchange.stats]
        if names is False:
            return
        now_ns = self._clock()  # the one wall-clock read of a logged request
        duration_ns = nanoseconds(duration)
        start_s, nanos = divmod(now_ns - duration_ns, 1_000_000_000)
        start = self._seconds.get(start_s)
        retries = 1 if exchange.retried else 0
        fields = self._core(downstream, exchange, origin, status, duration, names)
        fields["StartUTC"] = go_stamp(start.utc, nanos, "Z")
        fields["StartLocal"] = go_stamp(start.local, nanos, start.zone)
        fields["RetryAttempts"] = retries
        for name in self._dropped:
            fields.pop(name, None)
        if self._headers_shown:
            self._headers(fields, exchange, origin)
        now_second = self._seconds.get(now_ns // 1_000_000_000)
        self.buffer.add(self._format(fields, start, now_second))

    def _core(
        self,
        downstream: Connection,
        exchange: Exchange,
        origin: ResponseHead | None,
        status: int,
        duration: float,
        names: tuple[str, str] | None,
    ) -> dict[str, Any]:
        entrypoint = downstream.entrypoint
        duration_ns = nanoseconds(duration)
        core: dict[str, Any] = {
            "Duration": duration_ns,
            "entryPointName": entrypoint.name,
            "RequestCount": self.count,
            "RequestMethod": exchange.method_b.decode("latin-1"),
            "RequestPath": exchange.target.decode("utf-8", "replace"),
            "RequestProtocol": f"HTTP/{exchange.version}",
            "RequestScheme": "https" if entrypoint.tls else "http",
            "RequestContentSize": exchange.bytes_in,
            "DownstreamStatus": status,
            "ClientUsername": "-",
        }
        core["ClientAddr"], core["ClientHost"], core["ClientPort"] = client_fields(
            downstream.transport
        )
        host = exchange.head.host.decode("latin-1")
        if host:
            core["RequestAddr"] = host
            core["RequestHost"], core["RequestPort"] = split_host_port(host)
        if names is not None:
            core["RouterName"] = names[0]
        server = exchange.server
        if server is not None:
            core["ServiceName"] = server.service
            core["ServiceURL"] = server.url
            address = self._addresses.get(server.url)
            if address is None:
                if len(self._addresses) > 10_000:  # servers come and go: bounded
                    self._addresses.clear()
                address = self._addresses[server.url] = service_addr(server.url)
            core["ServiceAddr"] = address
        size = exchange.bytes_out
        if origin is not None:
            # The backend's time is not measured apart (that would cost every request a
            # clock read): the origin duration is the exchange's, the overhead 0.
            core["OriginStatus"] = status
            core["OriginDuration"] = duration_ns
            core["OriginContentSize"] = size
            core["Overhead"] = 0
        else:
            core["OriginStatus"] = core["OriginDuration"] = core["OriginContentSize"] = 0
            core["Overhead"] = duration_ns
            if size:
                core["GzipRatio"] = 0  # Go writes the float64 0 as 0
        core["DownstreamContentSize"] = size
        tls = tls_fields(downstream.transport)
        if tls is not None:
            core["TLSVersion"] = tls[0]
            if tls[1]:
                core["TLSCipher"] = tls[1]
        return core

    def _headers(
        self, fields: dict[str, Any], exchange: Exchange, origin: ResponseHead | None
    ) -> None:
        request = [(n, v) for n, v in exchange.head.items() if n.lower() != b"host"]
        request += _block_pairs(exchange.forwarded)
        self._add_headers(fields, "request_", request)
        if origin is not None:
            pairs = origin.items()
            self._add_headers(fields, "origin_", pairs)
            self._add_headers(fields, "downstream_", pairs)
        elif exchange.status in _ERROR_STATUSES:
            self._add_headers(fields, "downstream_", _ERROR_HEADERS)

    def _add_headers(
        self, fields: dict[str, Any], prefix: str, pairs: Iterable[tuple[bytes, bytes]]
    ) -> None:
        grouped: dict[str, list[str]] = {}
        for raw_name, raw_value in pairs:
            name = canonical_header(raw_name.decode("latin-1"))
            grouped.setdefault(name, []).append(raw_value.decode("utf-8", "replace"))
        for name, values in grouped.items():
            mode = self.rules.header_mode(name)
            if mode == KEEP:
                fields[prefix + name] = ",".join(values)
            elif mode == REDACT:
                fields[prefix + name] = REDACTED

    def flush(self) -> None:
        """Hand the buffered lines to the writer (the worker's tick); say, once per tick at
        most, how many lines were dropped since the last time."""
        self.buffer.flush()
        writer = self.writer
        if writer.dropped > self._reported:
            log.warning(
                "access log: %d lines dropped (%s)",
                writer.dropped - self._reported,
                writer.error or "the writer is behind: a full or slow disk, or a pipe nobody reads",
            )
            self._reported = writer.dropped

    def counters(self) -> dict[str, int]:
        """What the worker reports with its metrics (`accessLog`): lines written by the
        thread, lines dropped (the thread too far behind, or a failed write) and
        characters of lines waiting for the thread (at most `max_bytes`)."""
        writer = self.writer
        return {
            "written": getattr(writer, "written", 0),
            "dropped": writer.dropped,
            "waiting": getattr(writer, "waiting", 0),
        }

    def reconfigured(self) -> None:
        """The worker serves another configuration: routers' options are read again."""
        self._names.reset()

    def reopen(self) -> None:
        self.writer.reopen()

    def close(self) -> None:
        """Hand what is buffered to the writer, which writes it before it stops."""
        self.buffer.flush()
        self.writer.close()


class _RouterNames(dict[Any, "tuple[str, str] | Literal[False] | None"]):
    """Router and service names by the exchange's stats object (one per graph target,
    kept for the worker's life: edge/core/metrics.py `WorkerMetrics.target`), and whether
    the router's lines are written: not for internal routers (unless `addInternals`) nor
    for routers with `observability.accessLogs: false`. Read by subscript, `names[stats]`
    (None: no router; False: left out), a miss working the answer out (`__missing__`); the
    answers are forgotten when the worker serves another configuration
    (`AccessLog.reconfigured`), the routers' options being read from it."""

    __slots__ = ("_add_internals", "_index", "_metrics", "_routers")

    def __init__(
        self,
        metrics: WorkerMetrics,
        routers: Callable[[], Mapping[str, Router]] | None,
        add_internals: bool,
    ) -> None:
        super().__init__()
        self._metrics = metrics
        self._routers = routers
        self._add_internals = add_internals
        self._index: dict[int, tuple[str, str]] = {}  # id(stats) -> (router, service)
        self[None] = None  # an exchange no router took

    def reset(self) -> None:
        self.clear()
        self[None] = None

    def __missing__(self, stats: TargetStats) -> tuple[str, str] | Literal[False]:
        answer = self[stats] = self._answer(stats)
        return answer

    def _answer(self, stats: TargetStats) -> tuple[str, str] | Literal[False]:
        names = self._index.get(id(stats))
        if names is None:
            self._index = {id(s): (key[1], key[2]) for key, s in self._metrics.targets.items()}
            names = self._index.get(id(stats))
            if names is None:
                return False  # not a target of this worker: nothing to name it by
        router = names[0]
        if not self._add_internals and router.endswith("@internal"):
            return False
        routers = self._routers() if self._routers is not None else None
        config = routers.get(router) if routers is not None else None
        observability = config.observability if config is not None else None
        return False if observability is not None and observability.access_logs is False else names


_FAST: dict[str, Callable[[], Lines]] = {
    "common": lambda: ClfLines(common=True),
    "genericCLF": lambda: ClfLines(common=False),
    "json": JsonLines,
}
_FORMATS: dict[str, Callable[[dict[str, Any], Second, Second], str]] = {
    "common": format_common,
    "genericCLF": format_generic_clf,
    "json": format_json,
}

# What Go's http.Error writes besides the framing (Traefik's 404, 502, 503, 504 pages),
# as proxynow's own error answers do (edge/core/errors.py).
_ERROR_STATUSES = frozenset((404, 500, 502, 503, 504))
_ERROR_HEADERS = (
    (b"Content-Type", b"text/plain; charset=utf-8"),
    (b"X-Content-Type-Options", b"nosniff"),
)


def _block_pairs(block: bytes) -> list[tuple[bytes, bytes]]:
    """The (name, value) pairs of a block of header lines (the X-Forwarded-* proxynow adds)."""
    pairs = []
    for line in block.split(b"\r\n"):
        name, sep, value = line.partition(b":")
        if sep:
            pairs.append((name.strip(), value.strip()))
    return pairs
