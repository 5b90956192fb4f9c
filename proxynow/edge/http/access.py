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
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from proxynow.config.static import AccessLog as AccessLogConfig
from proxynow.edge.tls.contexts import go_cipher_name

if TYPE_CHECKING:
    import asyncio

    from proxynow.config.dynamic import Router
    from proxynow.edge.core.metrics import TargetStats, WorkerMetrics
    from proxynow.edge.http.exchange import EntryPointRuntime, Exchange
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
# Traefik logs a request the client gave up on before any response as 499.
CLIENT_CLOSED = 499
_CLF_TIME = "%d/%b/%Y:%H:%M:%S %z"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class Connection(Protocol):
    """What `record` reads of the client side (a front end's `Downstream`)."""

    @property
    def entrypoint(self) -> EntryPointRuntime: ...
    @property
    def transport(self) -> asyncio.BaseTransport: ...


class LineSink(Protocol):
    """Where lines go (edge/core/linewriter.py `LineWriter`: never blocks the loop)."""

    @property
    def dropped(self) -> int: ...
    @property
    def error(self) -> str: ...  # why lines were lost, if the writer knows
    def add(self, line: bytes) -> None: ...
    def flush(self) -> None: ...
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


@dataclass(frozen=True, slots=True)
class Second:
    """One wall-clock second in the forms lines need, made once per second (`seconds`)."""

    epoch: int
    utc: str  # 2026-12-02T09:39:10 (RFC 3339 without fraction and zone)
    local: str
    zone: str  # the local zone as RFC 3339 writes it: "Z" or "+01:00"
    clf_utc: str  # 02/Dec/2026:09:39:10 +0000
    clf_local: str


def second_of(epoch: int) -> Second:
    utc = datetime.fromtimestamp(epoch, UTC)
    local = utc.astimezone()
    minutes = int((local.utcoffset() or timedelta(0)).total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return Second(
        epoch,
        utc.strftime("%Y-%m-%dT%H:%M:%S"),
        local.strftime("%Y-%m-%dT%H:%M:%S"),
        f"{sign}{hours:02d}:{rest:02d}" if minutes else "Z",
        _clf_time(utc, "+0000"),
        _clf_time(local, f"{sign}{hours:02d}{rest:02d}"),
    )


def _clf_time(moment: datetime, zone: str) -> str:
    return (
        f"{moment.day:02d}/{_MONTHS[moment.month - 1]}/{moment.year}:"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} {zone}"
    )


def go_stamp(base: str, nanos: int, zone: str) -> str:
    """Go's RFC3339Nano: the fraction without its trailing zeros (none when 0)."""
    if not nanos:
        return base + zone
    return f"{base}.{nanos:09d}".rstrip("0") + zone


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


def go_quote(text: str) -> str:
    """Go's strconv.Quote (what `%q` writes): printable runes as they are, `"` and `\\`
    escaped, control characters as \\n, \\t, \\x01, \\u2028."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'  # the usual value: nothing to escape, no loop over characters
    out = ['"']
    for char in text:
        code = ord(char)
        if char == '"' or char == "\\":
            out.append("\\" + char)
        elif char.isprintable() or char == " ":
            out.append(char)
        elif char in _GO_ESCAPES:
            out.append(_GO_ESCAPES[char])
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


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
    if _GO_ESCAPED.search(text) is not None:  # rare: most lines have none of these
        text = text.translate(_GO_JSON)
    return text + "\n"


_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)
_GO_ESCAPED = re.compile("[&<>\u2028\u2029]")
_GO_JSON = {
    ord("&"): "\\u0026",
    ord("<"): "\\u003c",
    ord(">"): "\\u003e",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


# ------------------------------------------------------------------ the log


class AccessLog:
    """One worker's access log: fields from an exchange, filters, format, writer."""

    __slots__ = (
        "_addresses",
        "_dropped",
        "_format",
        "_headers_shown",
        "_names",
        "_quiet",
        "_reported",
        "_seconds",
        "add_internals",
        "count",
        "filters",
        "rules",
        "writer",
    )

    def __init__(
        self,
        config: AccessLogConfig,
        writer: LineSink,
        metrics: WorkerMetrics,
        routers: Callable[[], Mapping[str, Router]] | None = None,
    ) -> None:
        self.filters, self.rules = rules_from(config)
        self.writer = writer
        self.add_internals = config.add_internals
        self.count = 0  # Traefik's RequestCount: here per worker process
        self._format = _FORMATS.get(config.format, format_common)
        # The fields `fields` drops, worked out once: a line then pops them (usually none).
        self._dropped = tuple(name for name in FIELD_NAMES if not self.rules.keep(name))
        self._seconds = _Seconds()
        self._headers_shown = self.rules.headers_shown
        self._addresses: dict[str, str] = {}  # server URL -> ServiceAddr
        self._names = _RouterNames(metrics)
        self._quiet = _QuietRouters(routers)
        self._reported = 0  # dropped lines already warned about

    def record(
        self,
        downstream: Connection,
        exchange: Exchange,
        now: float,
        origin: ResponseHead | None,
        abandoned: bool = False,
    ) -> None:
        """Log `exchange`, over at loop time `now`; `origin` is the backend's response
        head when the response came from the backend (None: answered by proxynow)."""
        self.count += 1
        status = exchange.status or (CLIENT_CLOSED if abandoned else 0)
        duration = max(now - exchange.start, 0.0)
        retries = 1 if exchange.retried else 0
        if not self.filters.keep(status, retries, duration):
            return
        names = self._names.get(exchange.stats)
        if names is not None and self._left_out(names[0]):
            return
        now_ns = time.time_ns()  # the one wall-clock read of a logged request
        start_s, nanos = divmod(now_ns - round(duration * 1e9), 1_000_000_000)
        start = self._seconds.get(start_s)
        fields = self._core(downstream, exchange, origin, status, duration, names)
        fields["StartUTC"] = go_stamp(start.utc, nanos, "Z")
        fields["StartLocal"] = go_stamp(start.local, nanos, start.zone)
        fields["RetryAttempts"] = retries
        for name in self._dropped:
            fields.pop(name, None)
        if self._headers_shown:
            self._headers(fields, exchange, origin)
        now_second = self._seconds.get(now_ns // 1_000_000_000)
        line = self._format(fields, start, now_second)
        self.writer.add(line.encode("utf-8", "replace"))

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
        duration_ns = round(duration * 1e9)
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
        _client(core, downstream.transport)
        host = exchange.head.host.decode("latin-1")
        if host:
            core["RequestAddr"] = host
            core["RequestHost"], core["RequestPort"] = _split_host_port(host)
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
                address = self._addresses[server.url] = urlsplit(server.url).netloc
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
        _tls(core, downstream.transport)
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

    def _left_out(self, router: str) -> bool:
        """Internal routers (unless `addInternals`), and routers with
        `observability.accessLogs: false`."""
        if not self.add_internals and router.endswith("@internal"):
            return True
        return router in self._quiet.names()

    def flush(self) -> None:
        """Hand the buffered lines to the writer (the worker's tick); say, once per tick at
        most, how many lines were dropped since the last time."""
        writer = self.writer
        writer.flush()
        if writer.dropped > self._reported:
            log.warning(
                "access log: %d lines dropped (%s)",
                writer.dropped - self._reported,
                writer.error or "the writer is behind: a full or slow disk, or a pipe nobody reads",
            )
            self._reported = writer.dropped

    def reopen(self) -> None:
        self.writer.reopen()

    def close(self) -> None:
        self.writer.close()


class _QuietRouters:
    """The routers with `observability.accessLogs: false`, worked out again only when the
    worker serves another configuration (the mapping is then another object)."""

    __slots__ = ("_names", "_routers", "_source")

    def __init__(self, routers: Callable[[], Mapping[str, Router]] | None) -> None:
        self._routers = routers
        self._source: object = None
        self._names: frozenset[str] = frozenset()

    def names(self) -> frozenset[str]:
        if self._routers is None:
            return self._names
        routers = self._routers()
        if routers is not self._source:
            self._source = routers
            self._names = frozenset(
                name
                for name, router in routers.items()
                if router.observability is not None and router.observability.access_logs is False
            )
        return self._names


class _RouterNames:
    """Router and service names by the exchange's stats object (one per graph target,
    kept for the worker's life: edge/core/metrics.py `WorkerMetrics.target`)."""

    __slots__ = ("_by_id", "_metrics", "_seen")

    def __init__(self, metrics: WorkerMetrics) -> None:
        self._metrics = metrics
        self._by_id: dict[int, tuple[str, str]] = {}
        self._seen = -1

    def get(self, stats: TargetStats | None) -> tuple[str, str] | None:
        if stats is None:
            return None
        names = self._by_id.get(id(stats))
        if names is None and len(self._metrics.targets) != self._seen:
            targets = self._metrics.targets
            self._seen = len(targets)
            self._by_id = {id(s): (key[1], key[2]) for key, s in targets.items()}
            names = self._by_id.get(id(stats))
        return names


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


def _split_host_port(value: str) -> tuple[str, str]:
    """Go's SplitHostPort, as Traefik uses it: on any error, (value, "-")."""
    if value.startswith("["):
        end = value.find("]")
        if end > 0 and value[end + 1 : end + 2] == ":" and value[end + 2 :]:
            return value[1:end], value[end + 2 :]
        return value, "-"
    host, sep, port = value.rpartition(":")
    if not sep or ":" in host:
        return value, "-"
    return host, port


def _client(core: dict[str, Any], transport: asyncio.BaseTransport) -> None:
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        host, port = str(peer[0]), str(peer[1])
        core["ClientAddr"] = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        core["ClientHost"], core["ClientPort"] = host, port
    else:
        core["ClientAddr"] = ""
        core["ClientHost"], core["ClientPort"] = "", "-"


def _tls(core: dict[str, Any], transport: asyncio.BaseTransport) -> None:
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return
    version = ssl_object.version() or ""
    core["TLSVersion"] = version.removeprefix("TLSv")
    cipher = ssl_object.cipher()
    if cipher:
        core["TLSCipher"] = go_cipher_name(cipher[0])


def _block_pairs(block: bytes) -> list[tuple[bytes, bytes]]:
    """The (name, value) pairs of a block of header lines (the X-Forwarded-* proxynow adds)."""
    pairs = []
    for line in block.split(b"\r\n"):
        name, sep, value = line.partition(b":")
        if sep:
            pairs.append((name.strip(), value.strip()))
    return pairs
