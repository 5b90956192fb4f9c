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

if TYPE_CHECKING:
    from proxynow.config.middlewares import Middleware
    from proxynow.edge.http.exchange import Exchange
    from proxynow.edge.message.headers import ResponseHead

__all__ = ["build", "choose", "encoder", "problem"]

Encoder = Callable[[bytes, bool], bytes]  # (piece of the body, end) → bytes to send

SUPPORTED = ("gzip", "br", "zstd")
_NEVER = (b"application/grpc",)
_NO_BODY: Final = frozenset({204, 206, 304})
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


def _chooser(encodings: tuple[str, ...], default: str) -> Callable[[bytes | None], str | None]:
    """`choose` for one middleware's options, memoised by the Accept-Encoding value."""
    memo: dict[bytes | None, str | None] = {}

    def chosen(accept: bytes | None) -> str | None:
        if accept in memo:
            return memo[accept]
        encoding = choose(accept, encodings, default)
        if len(memo) >= MEMO_LIMIT:
            memo.clear()
        memo[accept] = encoding
        return encoding

    return chosen


def build(middleware: Middleware, context: BuildContext) -> Step:
    """The `compress` builder (registry.py)."""
    options = middleware.compress
    assert options is not None
    encodings = tuple(e for e in options.encodings if e in SUPPORTED) or SUPPORTED
    default = options.default_encoding
    minimum = max(options.min_response_body_bytes, 0)
    excluded = tuple(t.encode().lower() for t in options.excluded_content_types) + _NEVER
    included = tuple(t.encode().lower() for t in options.included_content_types)
    chosen: dict[int, str] = {}  # id(exchange) → its encoding, from the request to the end
    pick = _chooser(encodings, default)

    def allowed(media: bytes) -> bool:
        if media in excluded:
            return False
        return not included or media in included

    def request(exchange: Exchange) -> None:
        if exchange.method_b == b"HEAD":
            return None
        head = exchange.head
        if not allowed(_media(head.get(b"content-type"))):
            return None
        encoding = pick(head.get(b"accept-encoding"))
        if encoding is not None:
            chosen[id(exchange)] = encoding
        return None

    def response_head(exchange: Exchange, status: int, head: ResponseHead) -> None:
        encoding = chosen.get(id(exchange))
        if encoding is None:
            return  # the client accepts none of them: nothing varies, as in Traefik
        head.append(b"Vary", b"Accept-Encoding")
        if status < 200 or status in _NO_BODY:
            return
        length = head.content_length  # the cheapest test first: most small bodies stop here
        if length.isdigit() and (int(length) < minimum or length == b"0"):
            return
        if head.get(b"content-encoding") is not None:
            return
        if not allowed(_media(head.get(b"content-type"))):
            return
        head.set(b"Content-Encoding", encoding.encode())
        exchange.transform = encoder(encoding)

    def outcome(exchange: Exchange, now: float) -> None:
        chosen.pop(id(exchange), None)

    return Step("compress", request=request, response_head=response_head, outcome=outcome)
