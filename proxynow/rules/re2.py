"""Go RE2 regular expressions, compiled with Python's ``re``.

Traefik compiles rule regexps with Go's ``regexp`` (RE2 syntax). Python's ``re`` accepts a
superset in some places and spells a few things differently, so a pattern is first walked
once and translated:

- rejected like RE2 rejects them: lookarounds, backreferences (``\\1``, ``(?P=n)``), atomic
  groups, possessive quantifiers, conditionals, comments, ``\\Z``, and the ungreedy flag
  ``U`` (not supported here; RE2 has it);
- translated: ``(?<name>`` → ``(?P<name>``, ``\\z`` → ``\\Z``, ``\\Q…\\E`` → escaped text,
  ``\\x{h…}`` → the character, POSIX classes ``[[:alpha:]]`` → ranges, ``$`` → ``\\Z``
  (RE2's ``$`` matches only at the very end; Python's also before a final newline), a flag
  group in the middle of a pattern ``a(?i)b`` → a scoped group ``a(?i:b)`` (Python accepts
  global flags only at the start);
- compiled with ``re.ASCII``: RE2's ``\\w``, ``\\d``, ``\\s`` and ``\\b`` are ASCII-only.

Remaining differences are listed in docs/rules.md (Unicode classes ``\\pL`` are rejected,
case folding under ``(?i)`` is ASCII-only, Python backtracks where RE2 runs in linear time).
"""

from __future__ import annotations

import re
import warnings

_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
_CLASS_SPECIALS = frozenset("[&~|")
_FLAG_CHARS = frozenset("imsU-")
_QUANTIFIERS = frozenset("*+?}")


class RegexpError(ValueError):
    """A pattern RE2 would reject, or one this implementation cannot run like RE2 does."""


class _Translator:
    """Walks an RE2 pattern once, producing the equivalent Python pattern."""

    def __init__(self, pattern: str) -> None:
        self.src = pattern
        self.i = 0
        self.out: list[str] = []
        # One entry per open group: how many scoped-flag groups to close with it.
        self.groups: list[int] = [0]
        self.multiline = re.search(r"\(\?[a-zA-Z]*m", pattern) is not None

    def run(self) -> str:
        while self.i < len(self.src):
            self.step()
        if len(self.groups) > 1:
            raise RegexpError("missing closing )")
        self.out.append(")" * self.groups[0])
        return "".join(self.out)

    def step(self) -> None:
        c = self.src[self.i]
        if c == "\\":
            self.escape(in_class=False)
        elif c == "[":
            self.char_class()
        elif c == "(":
            self.group()
        elif c == ")":
            if len(self.groups) == 1:
                raise RegexpError("unexpected )")
            self.out.append(")" * self.groups.pop() + ")")
            self.i += 1
        elif c == "$" and not self.multiline:
            self.out.append("\\Z")
            self.i += 1
        elif c in _QUANTIFIERS and self.src[self.i + 1 : self.i + 2] == "+":
            raise RegexpError("possessive quantifiers are not supported (RE2)")
        else:
            self.out.append(c)
            self.i += 1

    def escape(self, in_class: bool) -> None:
        src, i = self.src, self.i
        if i + 1 >= len(src):
            raise RegexpError("trailing backslash at end of expression")
        e = src[i + 1]
        if e in "123456789":
            raise RegexpError("backreferences are not supported (RE2)")
        if e in "pP":
            raise RegexpError("Unicode character classes (\\p, \\P) are not supported")
        if e in "ZuUNgeC":
            raise RegexpError(f"invalid escape sequence \\{e} (RE2)")
        if e == "z" and not in_class:
            self.out.append("\\Z")
        elif e == "Q":
            end = src.find("\\E", i + 2)
            literal = src[i + 2 :] if end < 0 else src[i + 2 : end]
            self.out.append(re.escape(literal))
            self.i = len(src) if end < 0 else end + 2
            return
        elif e == "x" and src[i + 2 : i + 3] == "{":
            end = src.find("}", i + 3)
            if end < 0:
                raise RegexpError("invalid escape sequence \\x{")
            self.out.append(re.escape(chr(int(src[i + 3 : end], 16))))
            self.i = end + 1
            return
        else:
            self.out.append(src[i : i + 2])
        self.i = i + 2

    def char_class(self) -> None:
        src = self.src
        self.out.append("[")
        self.i += 1
        if src[self.i : self.i + 1] == "^":
            self.out.append("^")
            self.i += 1
        first = True
        while self.i < len(src):
            c = src[self.i]
            if c == "]" and not first:
                self.out.append("]")
                self.i += 1
                return
            first = False
            if c == "\\":
                self.escape(in_class=True)
            elif src.startswith("[:", self.i):
                self.posix_class()
            elif c in _CLASS_SPECIALS:
                # Escaped so that Python does not read "[[" or "&&" as future set syntax.
                self.out.append("\\" + c)
                self.i += 1
            else:
                self.out.append(c)
                self.i += 1
        raise RegexpError("missing closing ]")

    def posix_class(self) -> None:
        end = self.src.find(":]", self.i + 2)
        name = self.src[self.i + 2 : end] if end >= 0 else ""
        if name not in _POSIX_CLASSES:
            raise RegexpError(f"invalid character class range {self.src[self.i : end + 2]}")
        self.out.append(_POSIX_CLASSES[name])
        self.i = end + 2

    def group(self) -> None:
        src, i = self.src, self.i
        if not src.startswith("(?", i):
            self.open_group("(", 1)
            return
        rest = src[i + 2 : i + 4]
        if rest[:1] in ("=", "!") or rest in ("<=", "<!"):
            raise RegexpError("lookaround assertions are not supported (RE2)")
        if rest[:1] == ">" or rest[:1] == "(" or rest[:1] == "#" or rest == "P=":
            raise RegexpError(f"invalid or unsupported Perl syntax: (?{rest[:1]}")
        if rest[:1] == "<":
            self.open_group("(?P<", 3)
        elif rest == "P<":
            self.open_group("(?P<", 4)
        else:
            self.flag_group()

    def open_group(self, text: str, width: int) -> None:
        self.out.append(text)
        self.groups.append(0)
        self.i += width

    def flag_group(self) -> None:
        src, i = self.src, self.i
        j = i + 2
        while j < len(src) and src[j] in _FLAG_CHARS:
            j += 1
        flags = src[i + 2 : j]
        terminator = src[j : j + 1]
        if terminator not in (")", ":") or not flags:
            raise RegexpError(f"invalid or unsupported Perl syntax: {src[i : j + 1]}")
        if "U" in flags:
            raise RegexpError("the ungreedy flag U is not supported")
        if terminator == ":":
            self.open_group(f"(?{flags}:", j + 1 - i)
        elif i == 0 and "-" not in flags:
            self.out.append(f"(?{flags})")
            self.i = j + 1
        else:
            # A flag group mid-pattern applies to the rest of the enclosing group: open a
            # scoped group now and close it together with the enclosing one.
            self.out.append(f"(?{flags}:")
            self.groups[-1] += 1
            self.i = j + 1


def translate(pattern: str) -> str:
    """Translate an RE2 pattern to the equivalent Python pattern, or raise ``RegexpError``."""
    return _Translator(pattern).run()


def compile_re2(pattern: str) -> re.Pattern[str]:
    """Compile an RE2 pattern for unanchored ``search``; raise ``RegexpError`` if invalid."""
    translated = translate(pattern)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return re.compile(translated, re.ASCII)
    except re.error as err:
        raise RegexpError(err.msg) from None
