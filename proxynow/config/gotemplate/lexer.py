"""Go text/template lexing: a template's text into literal text and action tokens.

The template is cut into `Text` pieces and `Action`s (`{{ ... }}`); trim markers
(`{{- ` and ` -}}`) are applied to the neighbouring text here, and comments are dropped.
An action's inside becomes `Token`s, each with its offset in the template (for error
positions) and whether whitespace preceded it (`.a.b` is one field chain, `.a .b` two
arguments). A problem is a `TemplateError` at the offset where it was found.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from proxynow.config.gotemplate.errors import TemplateError

__all__ = ["KEYWORDS", "Action", "Text", "Token", "lex"]

KEYWORDS = frozenset(
    {"block", "break", "continue", "define", "else", "end", "if", "range", "template", "with"}
)
_SPACE = " \t\r\n"
_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
    "'": "'",
}
_PUNCT = {"|": "pipe", "(": "lparen", ")": "rparen", ",": "comma", "=": "assign"}


@dataclass(frozen=True, slots=True)
class Token:
    """One token of an action: `kind` is one of ident, keyword, field, dot, var, string,
    number, bool, nil, declare, assign, pipe, lparen, rparen, comma."""

    kind: str
    value: Any
    pos: int
    spaced: bool


@dataclass(frozen=True, slots=True)
class Text:
    text: str
    pos: int


@dataclass(frozen=True, slots=True)
class Action:
    tokens: tuple[Token, ...]
    pos: int  # offset of its `{{`


def lex(source: str) -> list[Text | Action]:
    """The template's pieces in order, trim markers applied, comments removed."""
    pieces: list[Text | Action] = []
    at = 0
    trim_next = False
    while at < len(source):
        start = source.find("{{", at)
        end = len(source) if start < 0 else start
        text = source[at:end]
        if trim_next:
            text = text.lstrip(_SPACE)
        trim_left = start >= 0 and source.startswith("-", start + 2)
        trim_left = trim_left and _is_space(source, start + 3)
        if trim_left:
            text = text.rstrip(_SPACE)
        if text:
            pieces.append(Text(text, at))
        if start < 0:
            break
        inner = start + (4 if trim_left else 2)
        action, at, trim_next = _action(source, start, inner)
        if action is not None:
            pieces.append(action)
    return pieces


def _is_space(source: str, at: int) -> bool:
    return at < len(source) and source[at] in _SPACE


def _action(source: str, start: int, at: int) -> tuple[Action | None, int, bool]:
    """The action opened at `start`, whose inside begins at `at`; returns it (None for a
    comment), the offset after its `}}` and whether it trims the text that follows."""
    if source.startswith("/*", at):
        return _comment(source, start, at)
    tokens: list[Token] = []
    spaced = True
    while True:
        if at >= len(source):
            raise TemplateError("unclosed action", start)
        char = source[at]
        if char in _SPACE:
            close = _close_at(source, at)
            if close is not None:
                return Action(tuple(tokens), start), close, True
            at += 1
            spaced = True
            continue
        if source.startswith("}}", at):
            return Action(tuple(tokens), start), at + 2, False
        token, at = _token(source, at, spaced)
        tokens.append(token)
        spaced = False


def _close_at(source: str, at: int) -> int | None:
    """After whitespace at `at`: the end of a ` -}}` closing there, else None."""
    rest = at
    while rest < len(source) and source[rest] in _SPACE:
        rest += 1
    if source.startswith("-}}", rest):
        return rest + 3
    return None


def _comment(source: str, start: int, at: int) -> tuple[None, int, bool]:
    end = source.find("*/", at + 2)
    if end < 0:
        raise TemplateError("unclosed comment", start)
    after = end + 2
    if source.startswith("}}", after):
        return None, after + 2, False
    close = _close_at(source, after)
    if close is not None and after < len(source) and source[after] in _SPACE:
        return None, close, True
    raise TemplateError("comment ends before closing delimiter", start)


def _token(source: str, at: int, spaced: bool) -> tuple[Token, int]:
    char = source[at]
    if char == ":" and source.startswith(":=", at):
        return Token("declare", ":=", at, spaced), at + 2
    if char in _PUNCT:
        return Token(_PUNCT[char], char, at, spaced), at + 1
    if char == '"':
        value, end = _quoted(source, at)
        return Token("string", value, at, spaced), end
    if char == "`":
        end = source.find("`", at + 1)
        if end < 0:
            raise TemplateError("unterminated raw quoted string", at)
        return Token("string", source[at + 1 : end], at, spaced), end + 1
    if char == "'":
        code, after = _char(source, at)
        return Token("number", code, at, spaced), after
    if char == "." and not _digit_at(source, at + 1):
        return _field(source, at, spaced)
    if char == "$":
        end = _word_end(source, at + 1)
        return Token("var", source[at:end], at, spaced), end
    if char.isdigit() or (char in "+-." and _digit_at(source, at + 1)):
        return _number(source, at, spaced)
    if char.isalpha() or char == "_":
        return _word(source, at, spaced)
    raise TemplateError(f"unexpected {char!r} in command", at)


def _digit_at(source: str, at: int) -> bool:
    return at < len(source) and source[at].isdigit()


def _word_end(source: str, at: int) -> int:
    while at < len(source) and (source[at].isalnum() or source[at] == "_"):
        at += 1
    return at


def _field(source: str, at: int, spaced: bool) -> tuple[Token, int]:
    end = _word_end(source, at + 1)
    if end == at + 1:
        return Token("dot", ".", at, spaced), end
    return Token("field", source[at + 1 : end], at, spaced), end


def _word(source: str, at: int, spaced: bool) -> tuple[Token, int]:
    end = _word_end(source, at)
    word = source[at:end]
    if word in KEYWORDS:
        return Token("keyword", word, at, spaced), end
    if word in ("true", "false"):
        return Token("bool", word == "true", at, spaced), end
    if word == "nil":
        return Token("nil", None, at, spaced), end
    return Token("ident", word, at, spaced), end


def _quoted(source: str, at: int) -> tuple[str, int]:
    out: list[str] = []
    index = at + 1
    while index < len(source):
        char = source[index]
        if char == '"':
            return "".join(out), index + 1
        if char == "\n":
            break
        if char == "\\":
            text, index = _escape(source, index)
            out.append(text)
            continue
        out.append(char)
        index += 1
    raise TemplateError("unterminated quoted string", at)


def _escape(source: str, at: int) -> tuple[str, int]:
    """The escape sequence at `at` (a backslash): its text and the offset after it."""
    kind = source[at + 1 : at + 2]
    if kind in _ESCAPES:
        return _ESCAPES[kind], at + 2
    sizes = {"x": 2, "u": 4, "U": 8}
    if kind in sizes:
        digits = source[at + 2 : at + 2 + sizes[kind]]
        if len(digits) == sizes[kind] and all(c in "0123456789abcdefABCDEF" for c in digits):
            return chr(int(digits, 16)), at + 2 + sizes[kind]
    if kind.isdigit():
        digits = source[at + 1 : at + 4]
        if len(digits) == 3 and all(c in "01234567" for c in digits):
            return chr(int(digits, 8)), at + 4
    raise TemplateError("invalid escape sequence in quoted string", at)


def _char(source: str, at: int) -> tuple[int, int]:
    if source.startswith("\\", at + 1):
        text, end = _escape(source, at + 1)
    else:
        text, end = source[at + 1 : at + 2], at + 2
    if not text or not source.startswith("'", end):
        raise TemplateError("malformed character constant", at)
    return ord(text), end + 1


def _number(source: str, at: int, spaced: bool) -> tuple[Token, int]:
    end = at + 1
    while end < len(source) and (source[end].isalnum() or source[end] in "._+-"):
        if source[end] in "+-" and source[end - 1] not in "eEpP":
            break
        end += 1
    text = source[at:end]
    return Token("number", _number_value(text, at), at, spaced), end


def _number_value(text: str, at: int) -> int | float:
    """An integer unless written with `.`, an exponent or in hex with `p` (Go's rule for
    an untyped constant given to an `interface{}` parameter)."""
    digits = text.replace("_", "")
    if re.fullmatch(r"[+-]?0[0-7]+", digits):
        return int(digits, 8)  # Go reads a leading 0 as octal
    try:
        return int(digits, 0)
    except ValueError:
        pass
    try:
        if digits.lower().lstrip("+-").startswith("0x"):
            return float.fromhex(digits)
        return float(digits)
    except ValueError:
        raise TemplateError(f"bad number syntax: {text!r}", at) from None
