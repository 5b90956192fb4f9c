"""Go regular expressions for rule matchers, run in time linear in the input.

Traefik compiles rule regexps with Go's ``regexp``, which never backtracks. Python's ``re``
does: ``^/p/(a+)+$`` costs it nearly a second on a 26-byte path and minutes on 40 bytes.
So every pattern is compiled with RE2 (the ``google-re2`` package), whose syntax and
semantics are those of Go's ``regexp``: leftmost-first alternation, ``$`` only at the very
end, ASCII ``\\w``, ``\\d``, ``\\s`` and ``\\b``, Unicode classes and case folding. That
compilation also decides whether the pattern is valid, with Go's wording for the errors
(and a plainer one for the Perl features that RE2 leaves out: lookarounds, backreferences,
possessive quantifiers).

An RE2 match costs about four times what ``re`` costs on a short input (figures in
docs/rules.md), so a pattern that ``rules/linear_re.py`` proves ``re`` runs in linear time,
with the same answers, runs on ``re`` instead. That is the case of most rule regexps:
``^/api/v[0-9]+/``, ``^[a-z]+\\.example\\.com$``.
"""

from __future__ import annotations

import codecs
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

# _re2 is the binding itself: a search through re2's Python wrapper costs 2-6 times more.
from re2 import Options, _re2

from proxynow.rules.linear_re import python_pattern

Engine = Literal["re", "re2"]
# ``search(text)`` is None when the pattern does not match ``text`` and not None when it does.
Search = Callable[[str], object]

_RUNE_ERROR = "proxynow-rune-error"
_UNANCHORED = _re2.RE2.Anchor.UNANCHORED

# RE2's error texts → Go's (regexp/syntax), so that messages read like Traefik's.
_GO_WORDING = {
    "missing )": "missing closing )",
    "missing ]": "missing closing ]",
    "trailing \\": "trailing backslash at end of expression",
    "no argument for repetition operator": "missing argument to repetition operator",
    "bad repetition operator": "invalid nested repetition operator",
    "invalid repetition size": "invalid repeat count",
    "invalid perl operator": "invalid or unsupported Perl syntax",
    "invalid named capture group": "invalid named capture",
    "pattern too large - compile failed": "expression too large",
}


class RegexpError(ValueError):
    """A pattern Go's ``regexp`` rejects (or one too large for RE2's memory budget)."""


@dataclass(frozen=True, slots=True)
class Regexp:
    """A compiled rule regexp: ``search(text)`` finds a match anywhere in ``text``."""

    pattern: str
    engine: Engine
    search: Search


@functools.lru_cache(maxsize=4096)
def compile_regexp(pattern: str, engine: Engine | None = None) -> Regexp:
    """Compile a Go pattern for unanchored search; raise ``RegexpError`` if Go rejects it.

    ``engine`` None picks ``re`` where that is proven linear and RE2 otherwise; "re2" forces
    RE2 (for comparisons); "re" is refused where not proven. Cached: a rule is validated and
    compiled from the same pattern, and a configuration reload compiles it again.
    """
    compiled = _compile_re2(pattern)
    python = python_pattern(pattern) if engine != "re2" else None
    if python is not None:
        try:
            return Regexp(pattern, "re", re.compile(python, re.ASCII).search)
        except re.error:
            python = None  # a spelling re refuses is a gap in linear_re: RE2 still runs it
    if engine == "re":
        raise ValueError(f"{pattern!r} is not proven to run in linear time on re")
    return Regexp(pattern, "re2", _re2_search(compiled))


def _compile_re2(pattern: str) -> Any:
    _reject_byte_class(pattern)
    options = Options()
    options.never_capture = True  # a matcher needs no groups: RE2 then skips its slower engines
    options.log_errors = False
    try:
        encoded = pattern.encode("utf-8")
    except UnicodeEncodeError:
        raise RegexpError("invalid UTF-8") from None
    compiled = _re2.RE2(encoded, options)
    if not compiled.ok():
        raise RegexpError(_message(compiled.error().decode("utf-8", "replace")))
    return compiled


def _reject_byte_class(pattern: str) -> None:
    # RE2 has \C (any byte); Go's regexp rejects it. Skip \Q…\E quotes, which are literal.
    i = 0
    while (i := pattern.find("\\", i)) >= 0:
        escaped = pattern[i + 1 : i + 2]
        if escaped == "C":
            raise RegexpError("invalid escape sequence: `\\C`")
        if escaped == "Q":
            end = pattern.find("\\E", i + 2)
            i = len(pattern) if end < 0 else end + 2
        else:
            i += 2


def _message(error: str) -> str:
    code, _, argument = error.partition(": ")
    if code == "invalid perl operator" and argument[2:3] in ("=", "!", "<"):
        return "lookaround assertions are not supported (RE2)"
    if code == "invalid escape sequence" and argument[1:2].isdigit() and argument[1] != "0":
        return "backreferences are not supported (RE2)"
    if code == "bad repetition operator" and argument.endswith("+") and len(argument) > 1:
        return "possessive quantifiers are not supported (RE2)"
    # Go's format: the failing part of the pattern in backticks.
    wording = _GO_WORDING.get(code, code)
    return f"{wording}: `{argument}`" if argument else wording


def _re2_search(compiled: Any) -> Search:
    match = compiled.Match

    def search(text: str) -> bool | None:
        # Go reads each byte of invalid UTF-8 as U+FFFD; so does this encoding of the lone
        # surrogates that a path or query value decoded with "surrogateescape" carries.
        data = text.encode("utf-8", _RUNE_ERROR)
        return True if match(_UNANCHORED, data, 0, len(data))[0][0] >= 0 else None

    return search


def _rune_error(error: UnicodeError) -> tuple[bytes, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    # Bytes: the UTF-8 encoder accepts only ASCII text from a handler.
    return "\ufffd".encode() * (error.end - error.start), error.end


codecs.register_error(_RUNE_ERROR, _rune_error)
