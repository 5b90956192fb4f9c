"""Go regular expressions with capture groups: find, and Go's ``ReplaceAllString``.

The middlewares that rewrite a URL (stripPrefixRegex, replacePathRegex, redirectRegex) use
Go's ``regexp`` in Traefik: leftmost-first matching that never backtracks, and templates
where ``$1``, ``${1}``, ``$name`` and ``${name}`` name a group and ``$$`` is a dollar. The
patterns run on RE2 here (as rule regexps do, rules/goregexp.py; same syntax and the same
errors as Go), on bytes: Go strings are bytes, and a byte that is not UTF-8 is read as one
U+FFFD, which `_runes` reproduces (RE2 itself matches nothing on such a byte).

Output and work are bounded: a template can repeat a group, and a pattern matching the
empty string can fire at every byte, so ``replace_all`` stops (returning None) past
``limit`` bytes or ``MAX_MATCHES`` matches (each match is a call into RE2 from Python, about
2 µs: 64 Ki empty matches in a 64 KiB path would hold the event loop for 0.1 s).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from re2 import Options, _re2

from proxynow.rules.goregexp import RegexpError, _message, _reject_byte_class

__all__ = ["MAX_MATCHES", "GoRegexp", "compile_capturing"]

_UNANCHORED = _re2.RE2.Anchor.UNANCHORED
_RUNE_ERROR = "\ufffd".encode()
# Bytes of a group name in a template (Go's regexp.extract: letters, digits, underscore).
_NAME = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")

Spans = list[tuple[int, int]]
MAX_MATCHES = 4096


@dataclass(frozen=True, slots=True)
class GoRegexp:
    """A compiled pattern with its groups: `names` maps a group name to its number."""

    pattern: str
    compiled: Any
    names: dict[bytes, int]

    def search(self, data: bytes, pos: int = 0) -> Spans | None:
        """The spans of the leftmost match at or after `pos` (group 0 first), or None."""
        spans: Spans = self.compiled.Match(_UNANCHORED, data, pos, len(data))
        return spans if spans[0][0] >= 0 else None

    def find(self, data: bytes) -> bytes | None:
        """The text of the leftmost match in `data` (Go's FindString), or None."""
        text, offsets = _runes(data)
        spans = self.search(text)
        if spans is None:
            return None
        start, end = spans[0]
        if offsets is not None:
            start, end = offsets[start], offsets[end]
        return data[start:end]

    def replace_all(self, data: bytes, template: bytes, limit: int) -> bytes | None:
        """Go's ReplaceAllString on ASCII `data` (a URL on the wire is ASCII); None when
        the result would exceed `limit` bytes or take more than `MAX_MATCHES` matches."""
        parts = _Template(template, self.names)
        out: list[bytes] = []
        size = last_end = pos = matches = 0
        while pos <= len(data):
            spans = self.search(data, pos)
            if spans is None:
                break
            matches += 1
            if matches > MAX_MATCHES:
                return None
            start, end = spans[0]
            out.append(data[last_end:start])
            size += start - last_end
            # No replacement for an empty match right after the previous match (Go's rule).
            if end > last_end or start == 0:
                added = parts.expand(data, spans, limit - size)
                if added is None:
                    return None
                out.append(added)
                size += len(added)
            if size > limit:
                return None
            last_end = end
            pos = pos + 1 if end <= pos else end  # ASCII: one byte is one rune
        out.append(data[last_end:])
        result = b"".join(out)
        return result if len(result) <= limit else None


class _Template:
    """A replacement template split once into literals and group references."""

    __slots__ = ("pieces",)

    def __init__(self, template: bytes, names: dict[bytes, int]) -> None:
        # Each piece: bytes (a literal) or int (a group; -1: a name no group has).
        self.pieces: list[bytes | int] = []
        i = 0
        while (dollar := template.find(b"$", i)) >= 0:
            self.pieces.append(template[i:dollar])
            name, i = _reference(template, dollar)
            if name is None:  # not a reference: `$$` is a dollar, a bare `$` stays
                self.pieces.append(b"$")
                i = dollar + (2 if template[dollar + 1 : dollar + 2] == b"$" else 1)
                continue
            self.pieces.append(_group(name, names))
        self.pieces.append(template[i:])

    def expand(self, data: bytes, spans: Spans, room: int) -> bytes | None:
        out: list[bytes] = []
        size = 0
        for piece in self.pieces:
            if isinstance(piece, int):
                if piece < 0 or piece >= len(spans) or spans[piece][0] < 0:
                    continue
                start, end = spans[piece]
                piece = data[start:end]
            size += len(piece)
            if size > room:
                return None
            out.append(piece)
        return b"".join(out)


def _reference(template: bytes, dollar: int) -> tuple[bytes | None, int]:
    """The group name after the `$` at `dollar` and where the template goes on, or None
    (Go's regexp.extract)."""
    i = dollar + 1
    braced = template[i : i + 1] == b"{"
    if braced:
        i += 1
    start = i
    while i < len(template) and template[i] in _NAME:
        i += 1
    if i == start:
        return None, dollar
    if braced:
        if template[i : i + 1] != b"}":
            return None, dollar
        return template[start:i], i + 1
    return template[start:i], i


def _group(name: bytes, names: dict[bytes, int]) -> int:
    if name.isdigit():
        # Go parses the number with a bound: one too large names no group.
        return int(name) if len(name) < 9 else -1
    return names.get(name, -1)


def _runes(data: bytes) -> tuple[bytes, list[int] | None]:
    """`data` with each byte that is not UTF-8 replaced by U+FFFD, as Go's regexp reads
    it, and (only then) the offset in `data` of each offset in the result."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return data, None
    text = bytearray()
    offsets: list[int] = []
    i = 0
    while i < len(data):
        width = _rune_width(data, i)
        if width:
            text += data[i : i + width]
            offsets.extend(range(i, i + width))
        else:
            width = 1
            text += _RUNE_ERROR
            offsets.extend((i, i, i))
        i += width
    offsets.append(len(data))
    return bytes(text), offsets


def _rune_width(data: bytes, i: int) -> int:
    """The length of the valid UTF-8 sequence at `i`, or 0."""
    for width in (1, 2, 3, 4):
        try:
            data[i : i + width].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return width
    return 0


@functools.lru_cache(maxsize=1024)
def compile_capturing(pattern: str) -> GoRegexp:
    """Compile a Go pattern with its capture groups; raise `RegexpError` if Go rejects it."""
    _reject_byte_class(pattern)
    options = Options()
    options.log_errors = False
    try:
        encoded = pattern.encode("utf-8")
    except UnicodeEncodeError:
        raise RegexpError("invalid UTF-8") from None
    compiled = _re2.RE2(encoded, options)
    if not compiled.ok():
        raise RegexpError(_message(compiled.error().decode("utf-8", "replace")))
    names = dict(compiled.NamedCapturingGroups())
    return GoRegexp(pattern, compiled, names)
