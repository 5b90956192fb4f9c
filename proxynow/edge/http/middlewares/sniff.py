"""The media type of a response body from its first bytes, as Go's `http.DetectContentType`.

Traefik's contentType middleware lets Go's server set Content-Type from the first bytes a
handler writes when the backend sent none; the rules Go uses are the WHATWG MIME Sniffing
Standard's (https://mimesniff.spec.whatwg.org/, §7.1 and the image, audio/video, font and
archive tables), in the order Go tries them, on at most the first 512 bytes. A pure
function: no state, no allocation beyond the answer's lookup.
"""

from __future__ import annotations

__all__ = ["detect"]

_SNIFF_LEN = 512
_WS = b"\t\n\x0c\r "
_HTML = b"text/html; charset=utf-8"
_TEXT = b"text/plain; charset=utf-8"
_BINARY = b"application/octet-stream"

# The tags whose opening (case-insensitive, after leading white space, then a space or a
# '>') makes a body HTML (WHATWG §7.1, "scriptable MIME type").
_HTML_TAGS = tuple(
    tag.encode()
    for tag in (
        "<!DOCTYPE HTML",
        "<HTML",
        "<HEAD",
        "<SCRIPT",
        "<IFRAME",
        "<H1",
        "<DIV",
        "<FONT",
        "<TABLE",
        "<A",
        "<STYLE",
        "<TITLE",
        "<B",
        "<BODY",
        "<BR",
        "<P",
        "<!--",
    )
)

# (pattern, mask, media type): a body matches where `byte & mask == pattern` for every
# byte of the pattern (a mask byte 0 is a wildcard: a length field); in Go's order.
_FF = b"\xff"
_RIFF_MASK = _FF * 4 + b"\x00" * 4 + _FF * 4
_MASKED: tuple[tuple[bytes, bytes, bytes], ...] = (
    (b"%PDF-", _FF * 5, b"application/pdf"),
    (b"%!PS-Adobe-", _FF * 11, b"application/postscript"),
    (b"\xfe\xff\x00\x00", b"\xff\xff\x00\x00", b"text/plain; charset=utf-16be"),
    (b"\xff\xfe\x00\x00", b"\xff\xff\x00\x00", b"text/plain; charset=utf-16le"),
    (b"\xef\xbb\xbf\x00", b"\xff\xff\xff\x00", _TEXT),
    (b"\x00\x00\x01\x00", _FF * 4, b"image/x-icon"),
    (b"\x00\x00\x02\x00", _FF * 4, b"image/x-icon"),
    (b"BM", _FF * 2, b"image/bmp"),
    (b"GIF87a", _FF * 6, b"image/gif"),
    (b"GIF89a", _FF * 6, b"image/gif"),
    (b"RIFF\x00\x00\x00\x00WEBPVP", _RIFF_MASK + _FF * 2, b"image/webp"),
    (b"\x89PNG\r\n\x1a\n", _FF * 8, b"image/png"),
    (b"\xff\xd8\xff", _FF * 3, b"image/jpeg"),
    (b"FORM\x00\x00\x00\x00AIFF", _RIFF_MASK, b"audio/aiff"),
    (b"ID3", _FF * 3, b"audio/mpeg"),
    (b"OggS\x00", _FF * 5, b"application/ogg"),
    (b"MThd\x00\x00\x00\x06", _FF * 8, b"audio/midi"),
    (b"RIFF\x00\x00\x00\x00AVI ", _RIFF_MASK, b"video/avi"),
    (b"RIFF\x00\x00\x00\x00WAVE", _RIFF_MASK, b"audio/wave"),
)
_AFTER_MP4: tuple[tuple[bytes, bytes, bytes], ...] = (
    (b"\x1a\x45\xdf\xa3", _FF * 4, b"video/webm"),
    (b"\x00" * 34 + b"LP", b"\x00" * 34 + _FF * 2, b"application/vnd.ms-fontobject"),
    (b"\x00\x01\x00\x00", _FF * 4, b"font/ttf"),
    (b"OTTO", _FF * 4, b"font/otf"),
    (b"ttcf", _FF * 4, b"font/collection"),
    (b"wOFF", _FF * 4, b"font/woff"),
    (b"wOF2", _FF * 4, b"font/woff2"),
    (b"\x1f\x8b\x08", _FF * 3, b"application/x-gzip"),
    (b"PK\x03\x04", _FF * 4, b"application/zip"),
    (b"Rar!\x1a\x07\x00", _FF * 7, b"application/x-rar-compressed"),
    (b"Rar!\x1a\x07\x01\x00", _FF * 8, b"application/x-rar-compressed"),
    (b"\x00asm", _FF * 4, b"application/wasm"),
)
# Bytes that make a body binary (WHATWG §7.1, "binary data byte").
_BINARY_BYTES = bytes(b for b in range(0x20) if b not in (0x09, 0x0A, 0x0C, 0x0D, 0x1B))


def detect(data: bytes) -> bytes:
    """The Content-Type Go's `DetectContentType` gives `data` (never empty)."""
    data = data[:_SNIFF_LEN]
    start = len(data) - len(data.lstrip(_WS))
    if _html(data, start):
        return _HTML
    if data[start : start + 5] == b"<?xml":
        return b"text/xml; charset=utf-8"
    found = _masked(data, _MASKED)
    if found is None and _mp4(data):
        return b"video/mp4"
    if found is None:
        found = _masked(data, _AFTER_MP4)
    if found is not None:
        return found
    if data[start:].translate(None, _BINARY_BYTES) == data[start:]:
        return _TEXT
    return _BINARY


def _html(data: bytes, start: int) -> bool:
    for tag in _HTML_TAGS:
        end = start + len(tag)
        if len(data) <= end or data[start:end].upper() != tag:
            continue
        if data[end] in b" >":
            return True
    return False


def _masked(data: bytes, table: tuple[tuple[bytes, bytes, bytes], ...]) -> bytes | None:
    for pattern, mask, media in table:
        if len(data) < len(pattern):
            continue
        if all(data[i] & mask[i] == pattern[i] for i in range(len(pattern))):
            return media
    return None


def _mp4(data: bytes) -> bool:
    """An ISO BMFF `ftyp` box naming an mp4 brand (WHATWG §6.2.1)."""
    if len(data) < 12:
        return False
    size = int.from_bytes(data[:4], "big")
    if len(data) < size or size % 4 or data[4:8] != b"ftyp":
        return False
    return any(data[at : at + 3] == b"mp4" for at in range(8, size, 4) if at != 12)
