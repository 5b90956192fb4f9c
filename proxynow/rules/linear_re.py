"""Which Go regexps Python's backtracking ``re`` runs in linear time, and how to spell them.

``python_pattern(go)`` returns the ``re`` pattern (compiled with ``re.ASCII``) that gives
the same answer as Go on every input and that ``re.search`` runs in time linear in the
input, or None when it cannot prove both; the caller then uses RE2. The proof is by
shape, so it is conservative: a pattern is accepted only when it is

- **anchored**: ``^`` (or ``\\A``) then a sequence of items, optionally ending in ``$`` or
  ``\\z``; or **a plain literal**, optionally ending in ``$`` (``re`` finds a literal with
  a linear scan; an unanchored search otherwise retries every start position, so even
  ``[a-z]+x`` is quadratic there);
- made of **items** that are a single-character atom (a literal, ``.``, an ASCII class
  ``[a-z0-9_-]``, ``\\d``, ``\\w``, ``\\s`` and their negations), optionally quantified
  (``* + ? {n} {n,} {n,m}``, greedy), or a group of literal alternatives whose first
  characters all differ, ``(json|xml)``, not quantified;
- **unambiguous**: the characters a variable-count item repeats cannot start whatever may
  come after it (the next items up to the first one that cannot be empty). Then in every
  match the item takes as many characters as it can, so it is spelled possessive
  (``[a-z]++``) and ``re`` never backs off into it: one attempt reads each character once.

Everything else (nested or adjacent quantifiers that overlap, ``(a|a)*``, ``(.*a){20}``,
flags, Unicode classes, word boundaries, any non-ASCII character) goes to RE2. Within the
subset the semantics are Go's: ``$`` becomes ``\\Z``, ``\\s`` becomes ``[\\t\\n\\f\\r ]``
(Python's also has ``\\v``), and everything else means the same under ``re.ASCII``.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_ASCII = (1 << 128) - 1
_NON_ASCII = 1 << 128  # one bit standing for every character above U+007F


def _bits(chars: str) -> int:
    value = 0
    for c in chars:
        value |= 1 << ord(c)
    return value


def _negate(bits: int) -> int:
    return (~bits & _ASCII) | _NON_ASCII


_DIGIT = _bits("0123456789")
_WORD = _bits("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_SPACE = _bits("\t\n\f\r ")  # Go's \s: no \v
_ANY = _negate(_bits("\n"))  # Go's and Python's '.' without the s flag
_SPACE_TEXT = "\\t\\n\\f\\r "
# Perl classes: (characters, spelling outside a class, spelling inside one or None).
_PERL = {
    "d": (_DIGIT, "\\d", "\\d"),
    "D": (_negate(_DIGIT), "\\D", "\\D"),
    "w": (_WORD, "\\w", "\\w"),
    "W": (_negate(_WORD), "\\W", "\\W"),
    "s": (_SPACE, f"[{_SPACE_TEXT}]", _SPACE_TEXT),
    "S": (_negate(_SPACE), f"[^{_SPACE_TEXT}]", None),
}
_CONTROL = {"t": "\t", "n": "\n", "r": "\r", "f": "\f", "v": "\v"}
_SPECIAL = frozenset("\\.+*?()|[]{}^$")
_REPEAT = re.compile(r"\{(\d+)(,(\d*))?\}")


class _Unproven(Exception):
    """The pattern is outside the subset this module can prove linear."""


class _Item(NamedTuple):
    first: int  # characters that can start it
    repeats: int  # characters it repeats a variable number of times (0: fixed count)
    nullable: bool  # it can match the empty string
    literal: bool  # a single literal character, exactly once


def python_pattern(pattern: str) -> str | None:
    """The linear-time ``re`` spelling of a valid Go pattern, or None if not proven."""
    if not pattern.isascii() or not pattern.isprintable():
        return None
    try:
        return _Parser(pattern).run()
    except _Unproven:
        return None


class _Parser:
    def __init__(self, pattern: str) -> None:
        self.src = pattern
        self.i = 0
        self.items: list[_Item] = []
        self.out: list[str] = []

    def run(self) -> str:
        anchored = self.src.startswith(("^", "\\A"))
        if anchored:
            self.i = 1 if self.src[0] == "^" else 2
            self.out.append("^")
        while self.i < len(self.src):
            if self.src.startswith(("$", "\\z"), self.i):
                self.i += 1 if self.src[self.i] == "$" else 2
                if self.i < len(self.src):
                    raise _Unproven  # an end anchor before the end
                self.out.append("\\Z")
            elif self.src[self.i] == "(":
                self.items.append(self.group())
            else:
                self.items.append(self.quantified())
        if not anchored and not all(item.literal for item in self.items):
            raise _Unproven
        self.check_unambiguous()
        return "".join(self.out)

    def check_unambiguous(self) -> None:
        for k, item in enumerate(self.items):
            if not item.repeats:
                continue
            follow = 0
            for later in self.items[k + 1 :]:
                follow |= later.first
                if not later.nullable:
                    break
            if item.repeats & follow:
                raise _Unproven

    def quantified(self) -> _Item:
        chars, text, literal = self.atom()
        self.out.append(text)
        src, i = self.src, self.i
        c = src[i : i + 1]
        high: int | None
        if c in ("*", "+", "?"):
            low, high, width = (0 if c != "+" else 1), (1 if c == "?" else None), 1
        elif c == "{" and (repeat := _REPEAT.match(src, i)):
            low = int(repeat.group(1))
            if repeat.group(2) is None:
                high = low
            else:
                high = int(repeat.group(3)) if repeat.group(3) else None
            width = repeat.end() - i
        else:
            return _Item(chars, 0, False, literal)
        lazy = src[i + width : i + width + 1] in ("?", "+", "*", "{")
        if lazy or high == 0 or (high is not None and high < low):
            raise _Unproven  # lazy, nested, empty or invalid repetition
        # Possessive ("++"): nothing after the item can start with a character it repeats,
        # so no match ever needs it to give one back, and re is told not to try.
        self.out.append(src[i : i + width] + ("+" if low != high else ""))
        self.i = i + width
        return _Item(chars, 0 if low == high else chars, low == 0, False)

    def atom(self) -> tuple[int, str, bool]:
        """(characters matched, ``re`` spelling, is it a literal) of one atom."""
        c = self.src[self.i]
        if c == ".":
            self.i += 1
            return _ANY, ".", False
        if c == "[":
            chars, text = self.char_class()
            return chars, text, False
        if c == "\\":
            e = self.src[self.i + 1 : self.i + 2]
            if e in _PERL:
                self.i += 2
                chars, outside, _ = _PERL[e]
                return chars, outside, False
        char = self.literal_char()
        return _bits(char), re.escape(char), True

    def literal_char(self) -> str:
        """One literal character: plain, an escaped punctuation mark, or \\t \\n \\r \\f \\v."""
        src, i = self.src, self.i
        c = src[i : i + 1]
        if c == "\\":
            e = src[i + 1 : i + 2]
            if e in _CONTROL:
                self.i += 2
                return _CONTROL[e]
            if e and not e.isalnum():
                self.i += 2
                return e
            raise _Unproven  # \b, \x41, \Q…\E, \pL, octal and the like
        if not c or c in _SPECIAL:
            raise _Unproven
        self.i += 1
        return c

    def char_class(self) -> tuple[int, str]:
        src = self.src
        self.i += 1
        negated = src.startswith("^", self.i)
        self.i += negated
        if src[self.i : self.i + 1] in ("]", ""):
            raise _Unproven  # "[]a]" (a literal ']') and other rarities
        chars, parts = 0, list[str]()
        while src[self.i : self.i + 1] != "]":
            member_chars, text = self.class_member(first=not parts)
            chars |= member_chars
            parts.append(text)
        self.i += 1
        text = "[" + ("^" if negated else "") + "".join(parts) + "]"
        return (_negate(chars) if negated else chars), text

    def class_member(self, first: bool) -> tuple[int, str]:
        src = self.src
        c = src[self.i : self.i + 1]
        if c == "\\" and (e := src[self.i + 1 : self.i + 2]) in _PERL:
            inside = _PERL[e][2]
            if inside is None:
                raise _Unproven
            self.i += 2
            return _PERL[e][0], inside
        if c == "-":
            if not first and src[self.i + 1 : self.i + 2] != "]":
                raise _Unproven  # "[a-z-9]": read differently by different engines
            self.i += 1
            return _bits("-"), "\\-"
        low = self.class_char()
        if src[self.i : self.i + 1] != "-" or src[self.i + 1 : self.i + 2] == "]":
            return _bits(low), re.escape(low)
        self.i += 1
        high = self.class_char()
        if ord(high) < ord(low):
            raise _Unproven
        chars = sum(1 << code for code in range(ord(low), ord(high) + 1))
        return chars, f"{re.escape(low)}-{re.escape(high)}"

    def class_char(self) -> str:
        """One literal character inside a class, where ``. + * ( ) $ ^`` are plain."""
        c = self.src[self.i : self.i + 1]
        if c == "\\":
            return self.literal_char()
        if c in ("[", "]", "-", ""):
            raise _Unproven  # POSIX classes [:alpha:], a range ending in '-', the end
        self.i += 1
        return c

    def group(self) -> _Item:
        src = self.src
        self.i += 3 if src.startswith("(?:", self.i) else 1
        if src.startswith("?", self.i):
            raise _Unproven  # flags, named groups
        branches: list[str] = []
        firsts = 0
        while True:
            branch = []
            while src[self.i : self.i + 1] not in ("|", ")", ""):
                branch.append(self.literal_char())
            if not branch or firsts & _bits(branch[0]):
                raise _Unproven  # an empty alternative, or two starting alike
            firsts |= _bits(branch[0])
            branches.append("".join(re.escape(c) for c in branch))
            end = src[self.i : self.i + 1]
            self.i += 1
            if end == ")":
                break
            if end != "|":
                raise _Unproven
        if src[self.i : self.i + 1] in ("*", "+", "?", "{"):
            raise _Unproven  # a quantified group
        self.out.append("(?:" + "|".join(branches) + ")")
        return _Item(firsts, 0, False, False)
