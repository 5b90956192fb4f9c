"""`compress`: gzip, br and zstd response bodies, streamed, as Traefik compresses them.

The encoding is chosen from the request's `Accept-Encoding` (its q-values first, then the
order of `encodings`, gzip, br, zstd by default; `*` is the first of `encodings`; no
header: `defaultEncoding`, if set). A response is compressed unless the request is HEAD,
the status has no body (1xx, 204, 304) or is a 206, the response is already encoded, its
Content-Length is under `minResponseBodyBytes` (1024), or its Content-Type (or the
request's) is excluded (`excludedContentTypes`, or not in `includedContentTypes`;
`application/grpc` never is). A response to a client that accepts one of the encodings
says `Vary: Accept-Encoding`, compressed or not, as in Traefik.

Streaming: each piece of the body the backend sends is compressed and flushed (so server-
sent events and long downloads keep flowing), never the whole body in memory; the front end
re-frames a compressed body (chunked for HTTP/1.1), so the backend's Content-Length goes.
A response of unknown length is compressed whatever its size (Traefik waits for
`minResponseBodyBytes` before deciding; proxynow decides at the head).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import brotli
import zstandard
from isal import isal_zlib

from proxynow.edge.http.middlewares.base import BuildContext, Step
from proxynow.edge.message.headers import line_header

if TYPE_CHECKING:
    from proxynow.config.middlewares import Middleware
    from proxynow.edge.http.exchange import Exchange
    from proxynow.edge.message.headers import ResponseHead

__all__ = ["build", "choose", "encoder", "problem"]

Encoder = Callable[[bytes, bool], bytes]  # (piece of the body, end) → bytes to send

SUPPORTED = ("gzip", "br", "zstd")
_NEVER = (b"application/grpc",)
_NO_BODY: Final = frozenset({204, 206, 304})
_READS: Final = frozenset((b"content-type", b"accept-encoding"))  # of the request
_VARY: Final = b"Vary"
_ACCEPT_ENCODING: Final = b"Accept-Encoding"
# The request headers read and the response header added through the heads' `*_line`
# methods, which check nothing per request: checked here, once.
assert all(line_header(name, b"x") for name in _READS)
assert line_header(_VARY, _ACCEPT_ENCODING, response=True)
# gzip through ISA-L (python-isal): its level 3, the highest, costs about a tenth of
# zlib's level 6 (Traefik's gzip.DefaultCompression) for output about 5% larger on text
# (16 KiB of words: 29.8 us and 4,675 B against 358 us and 4,431 B on this machine).
# andybalholm/brotli's DefaultCompression (6), klauspost/zstd's SpeedDefault (about 3),
# as in Traefik's writers.
_GZIP_LEVEL = 3
_BROTLI_QUALITY = 6
_ZSTD_LEVEL = 3


def choose(accept: bytes | None, encodings: tuple[str, ...], default: str) -> str | None:
    """The encoding for an `Accept-Encoding` value (None: send as it is)."""
    if accept is None:
        return default or None
    best: tuple[float, int, str] | None = None
    for part in accept.decode("latin-1").split(","):
        name, _, params = part.strip().partition(";")
        name = name.strip().lower()
        quality = _quality(params)
        if quality <= 0:
            continue
        candidates = encodings[:1] if name == "*" else (name,) if name in encodings else ()
        for candidate in candidates:
            rank = (quality, -encodings.index(candidate), candidate)
            if best is None or rank[:2] > best[:2]:
                best = rank
    return best[2] if best is not None else None


def _quality(params: str) -> float:
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key.strip().lower() == "q":
            try:
                return max(0.0, min(float(value), 1.0))
            except ValueError:
                return 0.0
    return 1.0


def encoder(encoding: str) -> Encoder:
    """A streaming compressor: every piece is flushed, the end closes the stream."""
    if encoding == "gzip":
        gz = isal_zlib.compressobj(_GZIP_LEVEL, isal_zlib.DEFLATED, 31)

        def gzip(data: bytes, end: bool) -> bytes:
            flush = isal_zlib.Z_FINISH if end else isal_zlib.Z_SYNC_FLUSH
            return gz.compress(data) + gz.flush(flush)

        return gzip
    if encoding == "br":
        br = brotli.Compressor(quality=_BROTLI_QUALITY)

        def brotli_(data: bytes, end: bool) -> bytes:
            out: bytes = br.process(data)
            return out + (br.finish() if end else br.flush())

        return brotli_
    zc = zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compressobj()

    def zstd(data: bytes, end: bool) -> bytes:
        flush = zstandard.COMPRESSOBJ_FLUSH_FINISH if end else zstandard.COMPRESSOBJ_FLUSH_BLOCK
        out: bytes = zc.compress(data) + zc.flush(flush)
        return out

    return zstd


def problem(middleware: Middleware) -> str | None:
    """Why this compress cannot be applied as written, or None."""
    options = middleware.compress
    assert options is not None
    named = (*options.encodings, options.default_encoding)
    unknown = [e for e in named if e and e not in SUPPORTED]
    if unknown:
        return f"compress: unknown encoding {unknown[0]!r} (known: {', '.join(SUPPORTED)})"
    if options.excluded_content_types and options.included_content_types:
        return "compress: excludedContentTypes and includedContentTypes are exclusive"
    return None


# Header values as sent → what they parse to. Clients and backends repeat a handful of
# values, so a request pays a lookup; bounded (the values are chosen by the peers): a full
# memo is emptied and starts again.
MEMO_LIMIT: Final = 1024
_MEDIA: dict[bytes, bytes] = {}


def _media(value: bytes | None) -> bytes:
    if not value:
        return b""
    media = _MEDIA.get(value)
    if media is None:
        media = value.split(b";", 1)[0].strip().lower()
        if len(_MEDIA) >= MEMO_LIMIT:
            _MEDIA.clear()
        _MEDIA[value] = media
    return media


def build(middleware: Middleware, context: BuildContext) -> Step:
    """The `compress` builder (registry.py)."""
    options = middleware.compress
    assert options is not None
    step = _Compress(
        tuple(e for e in options.encodings if e in SUPPORTED) or SUPPORTED,
        options.default_encoding,
        max(options.min_response_body_bytes, 0),
        tuple(t.encode().lower() for t in options.excluded_content_types) + _NEVER,
        tuple(t.encode().lower() for t in options.included_content_types),
    )
    # `late` does it all at the response, with no state kept per request, when no request
    # hook after this one can change what `choice` reads (base.py `gather`).
    return Step(
        "compress",
        request=step.request,
        response_head=step.response_head,
        outcome=step.outcome,
        late=step.late,
        reads=_READS,
        rewrites=frozenset(),
    )


class _Compress:
    """One compress middleware's options; its bound methods are the step's hooks."""

    __slots__ = (
        "bare",
        "chosen",
        "default",
        "encodings",
        "excluded",
        "included",
        "memo",
        "minimum",
        "shortest",
    )

    def __init__(
        self,
        encodings: tuple[str, ...],
        default: str,
        minimum: int,
        excluded: tuple[bytes, ...],
        included: tuple[bytes, ...],
    ) -> None:
        self.encodings = encodings
        self.default = default
        self.minimum = minimum
        # A Content-Length of fewer digits is under `minimum`, whatever the digits: no int().
        self.shortest = len(str(minimum)) if minimum > 0 else 0
        self.excluded = excluded
        self.included = included
        self.bare = self.allowed(b"")  # a request without Content-Type, the usual one
        self.chosen: dict[int, str] = {}  # id(exchange) → its encoding (`request`'s)
        # Accept-Encoding value → its encoding ("": none of them), memoised (bounded).
        self.memo: dict[bytes | None, str] = {}

    def allowed(self, media: bytes) -> bool:
        if media in self.excluded:
            return False
        return not self.included or media in self.included

    def choice(self, exchange: Exchange) -> str | None:
        """The encoding the request asks for, as it reaches this step (None: none)."""
        if exchange.method_b == b"HEAD":
            return None
        head = exchange.head
        media = head.get_line(b"content-type")
        if not (self.allowed(_media(media)) if media is not None else self.bare):
            return None
        accept = head.get_line(b"accept-encoding")
        encoding = self.memo.get(accept)
        if encoding is None:
            encoding = choose(accept, self.encodings, self.default) or ""
            if len(self.memo) >= MEMO_LIMIT:
                self.memo.clear()
            self.memo[accept] = encoding
        return encoding or None

    def request(self, exchange: Exchange) -> None:
        encoding = self.choice(exchange)
        if encoding is not None:
            self.chosen[id(exchange)] = encoding

    def response_head(self, exchange: Exchange, status: int, head: ResponseHead) -> None:
        encoding = self.chosen.get(id(exchange))
        if encoding is not None:  # else the client accepts none: nothing varies (Traefik)
            self.respond(exchange, encoding, status, head)

    def late(self, exchange: Exchange, status: int, head: ResponseHead) -> None:
        encoding = self.choice(exchange)
        if encoding is not None:
            self.respond(exchange, encoding, status, head)

    def outcome(self, exchange: Exchange, now: float) -> None:
        self.chosen.pop(id(exchange), None)

    def respond(self, exchange: Exchange, encoding: str, status: int, head: ResponseHead) -> None:
        head.append_line(_VARY, _ACCEPT_ENCODING)
        if status < 200 or status in _NO_BODY:
            return
        length = head.content_length  # the cheapest test first: most small bodies stop here
        if length.isdigit() and (
            len(length) < self.shortest or int(length) < self.minimum or length == b"0"
        ):
            return
        if head.get(b"content-encoding") is not None:
            return
        if not self.allowed(_media(head.get(b"content-type"))):
            return
        head.set(b"Content-Encoding", encoding.encode())
        exchange.transform = encoder(encoding)
