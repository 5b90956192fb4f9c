"""Access-log lines built straight from an exchange: Traefik's json, common and genericCLF.

`JsonLines` and `ClfLines` write the line of an exchange when the access log keeps every
core field and no header (the defaults; edge/http/access.py uses its field dictionary and
the general formatters otherwise). A line is one f-string over pieces that mostly repeat:
what a connection contributes (client address, TLS, entrypoint) is escaped once and kept on
the connection (`access_peer`), what a router and server contribute once per pair, a Host
once per value, a method once per verb, a path (up to 256 bytes) once per value. A
request then formats its numbers: no dictionary of fields, no sorting, no JSON encoder
walk, no regular expression over the line (stdlib json cost three times what the request
itself did; docs/logs.md has the figures).

The json line has the keys in the order Go's encoder writes a map (sorted, uppercase
first), so that it is the general formatter's line byte for byte
(tests/unit/edge/http/test_access_lines.py compares the two over thousands of generated
exchanges, for the three formats). Strings are escaped as Go's encoding/json does: `"`,
`\\` and control characters as json does, and `&`, `<`, `>`, U+2028, U+2029 as \\u
escapes.

Also here, for both paths: `Second` (one wall-clock second in the forms lines need),
`go_stamp` and `go_quote`. Pure, no clock of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from json.encoder import encode_basestring
from time import time_ns
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import urlsplit

from mypy_extensions import mypyc_attr

from proxynow.edge.tls.contexts import go_cipher_name
from proxynow.rules.goquote import go_quote as template_quote

if TYPE_CHECKING:
    import asyncio

    from proxynow.edge.http.exchange import EntryPointRuntime, Exchange
    from proxynow.edge.message.headers import ResponseHead
    from proxynow.edge.upstream.server import Server

__all__ = [
    "CLIENT_CLOSED",
    "ClfLines",
    "Connection",
    "JsonLines",
    "LineBuffer",
    "Lines",
    "Second",
    "client_fields",
    "go_json",
    "go_quote",
    "go_stamp",
    "nanoseconds",
    "second_of",
    "split_host_port",
    "tls_fields",
]

# Caches of client-chosen values (Host, method) are cleared when they reach this size.
_CACHE_LIMIT = 1024


class Connection(Protocol):
    """What a line reads of the client side (a front end's `Downstream`)."""

    @property
    def entrypoint(self) -> EntryPointRuntime: ...
    @property
    def transport(self) -> asyncio.BaseTransport: ...

    # The line pieces of this connection, made at its first line (None until then).
    access_peer: Any


# ------------------------------------------------------------------ shared pieces


@mypyc_attr(native_class=False)  # mypyc compiles no slots dataclass (docs/compiled.md)
@dataclass(frozen=True, slots=True)
class Second:
    """One wall-clock second in the forms lines need, made once per second."""

    epoch: int
    utc: str  # 2026-12-02T09:39:10 (RFC 3339 without fraction and zone)
    local: str
    zone: str  # the local zone as RFC 3339 writes it: "Z" or "+01:00"
    clf_utc: str  # 02/Dec/2026:09:39:10 +0000
    clf_local: str


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


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


def _fraction(nanos: int) -> str:
    """Go's RFC3339Nano fraction: without its trailing zeros, none when 0."""
    return f".{nanos:09d}".rstrip("0") if nanos else ""


def nanoseconds(seconds: float) -> int:
    """A duration (>= 0) in whole nanoseconds, the half up (native arithmetic where
    `round` is a call of the builtin; both paths use this, so their lines agree)."""
    return int(seconds * 1e9 + 0.5)


def go_stamp(base: str, nanos: int, zone: str) -> str:
    """Go's RFC3339Nano of a second's `base` form plus `nanos`."""
    return base + _fraction(nanos) + zone


def go_quote(text: str) -> str:
    """Go's strconv.Quote (what `%q` writes): printable runes as they are, `"` and `\\`
    escaped, control characters as \\n, \\t, \\x01, \\u2028 (the templates' own, for
    anything to escape)."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'  # the usual value: nothing to escape, no loop over characters
    return template_quote(text)


# What Go's encoding/json escapes beyond what Python's json does.
GO_JSON = {
    ord("&"): "\\u0026",
    ord("<"): "\\u003c",
    ord(">"): "\\u003e",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def go_json(text: str) -> str:
    """`text` as a JSON string (with its quotes), escaped as Go's encoding/json does."""
    quoted: str = encode_basestring(text)  # C: `"`, `\\` and control characters
    if not quoted.isascii() or "&" in quoted or "<" in quoted or ">" in quoted:
        quoted = quoted.translate(GO_JSON)  # rare: most values have none of these
    return quoted


def split_host_port(value: str) -> tuple[str, str]:
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


def client_fields(transport: asyncio.BaseTransport) -> tuple[str, str, str]:
    """(ClientAddr, ClientHost, ClientPort) of a connection."""
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        host, port = str(peer[0]), str(peer[1])
        return (f"[{host}]:{port}" if ":" in host else f"{host}:{port}"), host, port
    return "", "", "-"


def tls_fields(transport: asyncio.BaseTransport) -> tuple[str, str] | None:
    """(TLSVersion, TLSCipher) of a TLS connection, in Traefik's names; None without TLS."""
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    version = (ssl_object.version() or "").removeprefix("TLSv")
    cipher = ssl_object.cipher()
    return version, go_cipher_name(cipher[0]) if cipher else ""


def service_addr(url: str) -> str:
    return urlsplit(url).netloc


# ------------------------------------------------------------------ json

# Go writes the float64 0 of a response proxynow answered itself as 0.
_GZIP = ',"GzipRatio":0'


class Memo(dict[Any, Any]):
    """A piece of a line by the value it is made of, made on first sight by `make`. Read by
    subscript (a miss goes to `__missing__`), so that a hit costs no method call; cleared at
    `_CACHE_LIMIT` entries, the values being client-chosen."""

    __slots__ = ("make",)

    def __init__(self, make: Callable[[Any], Any]) -> None:
        super().__init__()
        self.make = make

    def __missing__(self, key: Any) -> Any:
        if len(self) >= _CACHE_LIMIT:
            self.clear()
        piece = self[key] = self.make(key)
        return piece


class _JsonPeer:
    """A connection's json pieces: from the client fields to the key of the response size,
    RequestProtocol and RequestScheme of its HTTP version, and what follows StartUTC up
    to `time` (TLS fields, entrypoint, level, msg)."""

    __slots__ = ("client", "protocol", "scheme", "shape", "tail", "version")

    def __init__(self, downstream: Connection) -> None:
        self.shape: _Shape | None = None  # the last request's pieces (keep-alive repeats it)
        entrypoint = downstream.entrypoint
        addr, host, port = client_fields(downstream.transport)
        self.client = (
            f'{{"ClientAddr":{go_json(addr)},"ClientHost":{go_json(host)},'
            f'"ClientPort":{go_json(port)},"ClientUsername":"-","DownstreamContentSize":'
        )
        self.scheme = ',"RequestScheme":"https"' if entrypoint.tls else ',"RequestScheme":"http"'
        self.version = ""
        self.protocol = ""
        tls = tls_fields(downstream.transport)
        tail = ""
        if tls is not None:
            cipher = f',"TLSCipher":{go_json(tls[1])}' if tls[1] else ""
            tail = f'{cipher},"TLSVersion":{go_json(tls[0])}'
        # From the end of StartUTC's value: per connection, never in a cache shared by all
        self.tail = f'Z"{tail},"entryPointName":{go_json(entrypoint.name)},"level":"info","msg":""'

    def protocol_of(self, version: str) -> str:
        """`,"RequestProtocol":"HTTP/1.1","RequestScheme":"http"` (a connection keeps its
        version, so this is made once)."""
        self.version = version
        self.protocol = f',"RequestProtocol":{go_json("HTTP/" + version)}{self.scheme}'
        return self.protocol


def _json_status(status: int) -> str:
    return f',"DownstreamStatus":{status},"Duration":'


def _json_number(number: int) -> str:
    return str(number)


def _json_method(method: bytes) -> str:
    return f',"RequestMethod":{go_json(method.decode("latin-1"))},"RequestPath":'


def _json_host(raw: bytes) -> tuple[str, str, str]:
    """The pieces a Host gives, each with the key that follows it."""
    host = raw.decode("latin-1")
    if not host:
        return ',"RequestContentSize":', "", ""
    name, port = split_host_port(host)
    return (
        f',"RequestAddr":{go_json(host)},"RequestContentSize":',
        f',"RequestHost":{go_json(name)}',
        f',"RequestPort":{go_json(port)}',
    )


def _json_target(key: tuple[str, str, str]) -> str:
    """RouterName and the Service* fields (none for a request no router took)."""
    router, url, service = key
    piece = f',"RouterName":{go_json(router)}' if router else ""
    if url:
        piece += (
            f',"ServiceAddr":{go_json(service_addr(url))},"ServiceName":{go_json(service)},'
            f'"ServiceURL":{go_json(url)}'
        )
    return piece


class _Shape:
    """What a connection's last line had besides its times and counters, as four pieces:
    a keep-alive client asks the same thing again (same status, sizes, Host, method,
    path, router, server), so its next line is these and the numbers, no lookups."""

    __slots__ = (
        "count",
        "head",
        "host",
        "method",
        "mid",
        "names",
        "origin",
        "rest",
        "retried",
        "server",
        "size",
        "size_in",
        "status",
        "target",
        "version",
    )

    def __init__(
        self,
        exchange: Exchange,
        origin: bool,
        status: int,
        names: tuple[str, str] | None,
        pieces: tuple[str, str, str, str],
    ) -> None:
        self.host = exchange.head.host
        self.target = exchange.target
        self.method = exchange.method_b
        self.version = exchange.version
        self.size = exchange.bytes_out
        self.size_in = exchange.bytes_in
        self.retried = exchange.retried
        self.server = exchange.server
        self.origin = origin
        self.status = status
        self.names = names
        # head: up to `"Duration":`; mid: to the next duration; count: to RequestCount's
        # value; rest: from there to StartLocal
        self.head, self.mid, self.count, self.rest = pieces

    def same(
        self, exchange: Exchange, origin: bool, status: int, names: tuple[str, str] | None
    ) -> bool:
        return (
            self.names is names
            and self.server is exchange.server
            and self.status == status
            and self.origin == origin
            and self.size == exchange.bytes_out
            and self.size_in == exchange.bytes_in
            and self.retried == exchange.retried
            and self.version == exchange.version
            and self.method == exchange.method_b
            and self.target == exchange.target
            and self.host == exchange.head.host
        )


# Traefik logs a request the client gave up on before any response as 499.
CLIENT_CLOSED = 499


class Sink(Protocol):
    """Where a batch of lines goes (edge/core/linewriter.py `LineWriter.submit`)."""

    def submit(self, lines: list[str], size: int) -> None: ...


_BATCH = 256 << 10  # with bufferingSize 0: characters of lines handed to the writer at once
_MOST = 1 << 20  # with a bufferingSize: characters held at most, whatever it says
FLUSH_DELAY = 0.05  # with bufferingSize 0: seconds a line waits at most for its batch


class LineBuffer:
    """The lines not yet handed to the writer thread: `add` is all a request pays (a list
    append and a length; the timer of a batch is set by its first line). The batch goes to
    `sink.submit` when it holds `_BATCH` characters or `FLUSH_DELAY` after its first line
    (bufferingSize 0), or `flush_at` lines (at most `_MOST` characters), or at `flush`
    (the worker's tick, a drain, the end). `later` is the loop's `call_later`; without
    one (tests) a line is handed over at once."""

    __slots__ = ("flush_at", "later", "limit", "lines", "sink", "size", "timed", "waiting")

    def __init__(
        self,
        sink: Sink,
        flush_at: int = 0,
        later: Callable[[float, Callable[[], None]], object] | None = None,
    ) -> None:
        self.sink = sink
        self.lines: list[str] = []
        self.size = 0  # characters in `lines`
        self.later = later
        self.waiting = False  # a timer is set for the batch
        self.timed = not flush_at and later is not None
        self.flush_at = flush_at if flush_at else (1 << 62 if later is not None else 1)
        self.limit = _MOST if flush_at else _BATCH

    def add(self, line: str) -> None:
        lines = self.lines
        lines.append(line)
        self.size += len(line)
        if self.size >= self.limit or len(lines) >= self.flush_at:
            self.flush()
        elif self.timed and not self.waiting:
            self.waiting = True
            later = self.later
            if later is not None:
                later(FLUSH_DELAY, self.flush)

    def flush(self) -> None:
        """Hand the lines so far to the sink."""
        self.waiting = False
        lines = self.lines
        if lines:
            size = self.size
            self.lines = []
            self.size = 0
            self.sink.submit(lines, size)


class Keep(Protocol):
    def keep(self, status: int, retries: int, duration: float) -> bool: ...


class Lines:
    """A fast path's whole record of an exchange (`record`, which `AccessLog.record` is on
    that path: no call of the general log in between): the request count, the filters,
    the router's names, one clock read, the line (`line`, of the format) and its hand-off
    to the writer."""

    __slots__ = ("clock", "count", "filters", "names", "writer")

    def __init__(self) -> None:
        self.count = 0  # Traefik's RequestCount: here per worker process
        self.clock: Callable[[], int] = time_ns
        self.filters: Keep | None = None  # None: no filter, every line kept
        # stats -> (router, service), None (no router) or False (not logged)
        self.names: Mapping[Any, tuple[str, str] | Literal[False] | None] = {None: None}
        self.writer: LineBuffer | None = None

    def record(
        self,
        downstream: Connection,
        exchange: Exchange,
        now: float,
        origin: ResponseHead | None,
        abandoned: bool = False,
    ) -> None:
        """AccessLog.record's fast path (the same arguments)."""
        self.count += 1
        status = exchange.status or (CLIENT_CLOSED if abandoned else 0)
        duration = now - exchange.start
        if duration < 0.0:
            duration = 0.0
        filters = self.filters
        if filters is not None and not filters.keep(status, 1 if exchange.retried else 0, duration):
            return
        names = self.names[exchange.stats]
        if names is False:
            return
        now_ns = self.clock()  # the one wall-clock read of a logged request
        line = self.line(
            downstream, exchange, origin, status, nanoseconds(duration), names, self.count, now_ns
        )
        writer = self.writer
        if writer is not None:
            writer.add(line)

    def line(
        self,
        downstream: Connection,
        exchange: Exchange,
        origin: ResponseHead | None,
        status: int,
        duration_ns: int,
        names: tuple[str, str] | None,
        count: int,
        now_ns: int,
    ) -> str:
        raise NotImplementedError


def _json_path(raw: bytes) -> str:
    """RequestPath's value: the one string of a line escaped per request (go_json inlined)."""
    path: str = encode_basestring(raw.decode("utf-8", "replace"))
    if not path.isascii() or "&" in path or "<" in path or ">" in path:
        path = path.translate(GO_JSON)
    return path


# Paths longer than this are escaped every time rather than kept in the memo of paths.
_MEMO_PATH = 256


class JsonLines(Lines):
    """Traefik's json line of an exchange, every core field kept, no header.

    The line is one f-string of about twenty pieces; what repeats is made once and kept:
    per connection (`_JsonPeer`), per status, method, Host, response size, router and
    server (the last pair also in `_last`, so keep-alive traffic to one router builds no
    key), per wall-clock second (the Start* and `time` pieces), and per path up to
    `_MEMO_PATH` bytes (a path asked again, the usual traffic, is not escaped again).
    """

    __slots__ = (
        "_hosts",
        "_last",
        "_methods",
        "_numbers",
        "_paths",
        "_second",
        "_statuses",
        "_targets",
        "_time",
    )

    def __init__(self) -> None:
        super().__init__()
        self._numbers = Memo(_json_number)  # response sizes repeat: their decimal text
        self._statuses = Memo(_json_status)
        self._methods = Memo(_json_method)
        self._hosts = Memo(_json_host)
        self._paths = Memo(_json_path)
        # (router, server url, service) -> RouterName and Service* pieces
        self._targets = Memo(_json_target)
        # The last (names, server) and its piece: one router's keep-alive traffic
        self._last: tuple[object, object, str] = (None, None, "")
        # The StartLocal / StartUTC pieces of one second, around the fraction
        self._second: tuple[int, str, str] = (-1, "", "")
        self._time: tuple[int, str] = (-1, "")  # the `time` piece of one second, and `}`

    def line(
        self,
        downstream: Connection,
        exchange: Exchange,
        origin: ResponseHead | None,
        status: int,
        duration_ns: int,
        names: tuple[str, str] | None,
        count: int,
        now_ns: int,
    ) -> str:
        # Typed: the pieces are then read as native attributes, not by name.
        peer: _JsonPeer | None = downstream.access_peer
        if peer is None:
            peer = downstream.access_peer = _JsonPeer(downstream)
        shape: _Shape | None = peer.shape
        from_origin = origin is not None
        if shape is None or not shape.same(exchange, from_origin, status, names):
            shape = peer.shape = _Shape(
                exchange,
                from_origin,
                status,
                names,
                self._pieces(peer, exchange, from_origin, status, names),
            )
        start_ns = now_ns - duration_ns
        start_s = start_ns // 1_000_000_000  # native arithmetic, where divmod is a call
        nanos = start_ns - start_s * 1_000_000_000
        second = self._second
        if second[0] != start_s:
            second = self._start(start_s)
        tail = self._time
        now_s = now_ns // 1_000_000_000
        if tail[0] != now_s:
            tail = self._now(now_s)
        duration = str(duration_ns)  # once: it is written twice
        if nanos:
            # Go's RFC3339Nano fraction, without trailing zeros (str, not a format spec:
            # cheaper), its dot in the line's template (no concatenation)
            fraction = str(nanos + 1_000_000_000)[1:].rstrip("0")
            return (
                f"{shape.head}{duration}{shape.mid}{duration}{shape.count}{count}{shape.rest}"
                f"{second[1]}.{fraction}{second[2]}.{fraction}{peer.tail}{tail[1]}"
            )
        return (  # a start on the second exactly: Go writes no fraction
            f"{shape.head}{duration}{shape.mid}{duration}{shape.count}{count}{shape.rest}"
            f"{second[1]}{second[2]}{peer.tail}{tail[1]}"
        )

    def _pieces(
        self,
        peer: _JsonPeer,
        exchange: Exchange,
        from_origin: bool,
        status: int,
        names: tuple[str, str] | None,
    ) -> tuple[str, str, str, str]:
        """A `_Shape`'s pieces: everything of the line but the durations, the request
        count and the times."""
        protocol = peer.protocol if peer.version == exchange.version else None
        if protocol is None:
            protocol = peer.protocol_of(exchange.version)
        host = self._hosts[exchange.head.host]
        server = exchange.server
        last = self._last
        target = last[2] if last[0] is names and last[1] is server else self._target(names, server)
        raw_path = exchange.target
        path = self._paths[raw_path] if len(raw_path) <= _MEMO_PATH else _json_path(raw_path)
        size = self._numbers[exchange.bytes_out]
        retries = ',"RetryAttempts":1' if exchange.retried else ',"RetryAttempts":0'
        head = f"{peer.client}{size}{self._statuses[status]}"
        request = f'{host[0]}{self._numbers[exchange.bytes_in]},"RequestCount":'
        rest = f"{host[1]}{self._methods[exchange.method_b]}{path}{host[2]}{protocol}{retries}"
        if from_origin:
            mid = f',"OriginContentSize":{size},"OriginDuration":'
            count = f',"OriginStatus":{self._numbers[status]},"Overhead":0{request}'
        else:
            gzip = _GZIP if exchange.bytes_out else ""
            mid = f'{gzip},"OriginContentSize":0,"OriginDuration":0,"OriginStatus":0,"Overhead":'
            count = request
        return head, mid, count, rest + target

    def _target(self, names: tuple[str, str] | None, server: Server | None) -> str:
        if server is None:
            target = self._targets[(names[0], "", "")] if names is not None else ""
        else:
            router = names[0] if names is not None else ""
            target = self._targets[(router, server.url, server.service)]
        self._last = (names, server, target)
        return target

    def _start(self, epoch: int) -> tuple[int, str, str]:
        start = second_of(epoch)
        second = self._second = (
            epoch,
            f',"StartLocal":"{start.local}',
            f'{start.zone}","StartUTC":"{start.utc}',
        )
        return second

    def _now(self, epoch: int) -> tuple[int, str]:
        now = second_of(epoch)
        tail = self._time = (epoch, f',"time":"{now.local}{now.zone}"}}\n')
        return tail


# ------------------------------------------------------------------ common, genericCLF


_DASH = '"-"'


class _ClfPeer:
    __slots__ = ("host",)

    def __init__(self, downstream: Connection) -> None:
        host = client_fields(downstream.transport)[1]
        self.host = host or "-"


def _clf_method(method: bytes) -> str:
    return method.decode("latin-1") or "-"


def _clf_protocol(version: str) -> str:
    return "HTTP/" + version


def _clf_target(key: tuple[str, str]) -> str:
    """The quoted router and server URL of the common format (`"-"` when none)."""
    return " ".join([go_quote(name) if name else _DASH for name in key])


class ClfLines(Lines):
    """Traefik's common (`common=True`) or genericCLF line of an exchange, every core
    field kept, no header (so referer and user agent are `"-"`, as Traefik writes them)."""

    __slots__ = ("_clf_utc", "_common", "_methods", "_protocols", "_targets")

    def __init__(self, common: bool) -> None:
        super().__init__()
        self._common = common
        self._methods = Memo(_clf_method)
        self._protocols = Memo(_clf_protocol)
        self._targets = Memo(_clf_target)  # (router, server url) -> their quoted pair
        self._clf_utc: tuple[int, str] = (-1, "")  # the start's second, CLF's form

    def line(
        self,
        downstream: Connection,
        exchange: Exchange,
        origin: ResponseHead | None,
        status: int,
        duration_ns: int,
        names: tuple[str, str] | None,
        count: int,
        now_ns: int,
    ) -> str:
        peer = downstream.access_peer
        if peer is None:
            peer = downstream.access_peer = _ClfPeer(downstream)
        start_s = (now_ns - duration_ns) // 1_000_000_000
        stamp = self._clf_utc
        if stamp[0] != start_s:
            stamp = self._clf_utc = (start_s, second_of(start_s).clf_utc)
        head = (
            f'{peer.host} - - [{stamp[1]}] "{self._methods[exchange.method_b]} '
            f"{exchange.target.decode('utf-8', 'replace') or '-'} "
            f'{self._protocols[exchange.version]}" {status} {exchange.bytes_out} "-" "-"'
        )
        if not self._common:
            return head + "\n"
        server = exchange.server
        router = names[0] if names is not None else ""
        target = self._targets[(router, server.url if server is not None else "")]
        return f"{head} {count} {target} {duration_ns // 1_000_000}ms\n"
