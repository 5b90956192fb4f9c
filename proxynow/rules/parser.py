"""Parser for Traefik v3 rules: a tokenizer and a hand-written recursive-descent parser.

Grammar (AND binds tighter than OR, ``!`` binds tightest)::

    rule     := or_expr END
    or_expr  := and_expr ("||" and_expr)*
    and_expr := unary ("&&" unary)*
    unary    := "!" unary | "(" or_expr ")" | NAME "(" [string ("," string)*] ")"
    string   := `raw` | "Go-escaped"

Traefik hands the rule to Go's expression parser, so values are Go string literals: raw
strings in backticks, or interpreted strings in double quotes with Go's escapes; single
quotes are character literals and rejected. Every error is a ``RuleError`` pointing at the
1-based column where the problem starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from proxynow.rules.ast import And, Matcher, Node, Not, Or
from proxynow.rules.errors import RuleError
from proxynow.rules.matchers import resolve_name, validate_matcher

RuleKind = Literal["http", "tcp"]

_NAME_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_NAME_CHARS = _NAME_START | frozenset("0123456789")
_SPACE = frozenset(" \t\r\n")
_PUNCT = {"(": "(", ")": ")", ",": ","}
_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}


@dataclass(frozen=True, slots=True)
class Token:
    """A lexical token: ``kind`` is the operator text, ``"name"``, ``"string"`` or ``"end"``."""

    kind: str
    value: str
    column: int

    def describe(self) -> str:
        if self.kind == "end":
            return "end of rule"
        if self.kind == "name":
            return f"'{self.value}'"
        if self.kind == "string":
            return "string"
        return f"'{self.kind}'"


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, ending with an ``end`` token."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in _SPACE:
            i += 1
        elif c in _PUNCT:
            tokens.append(Token(c, c, i + 1))
            i += 1
        elif c == "!":
            tokens.append(Token("!", c, i + 1))
            i += 1
        elif c in "&|":
            if text.startswith(c * 2, i):
                tokens.append(Token(c * 2, c * 2, i + 1))
                i += 2
            else:
                raise RuleError(f"unexpected '{c}' (did you mean '{c * 2}'?)", i + 1)
        elif c in _NAME_START:
            j = i + 1
            while j < n and text[j] in _NAME_CHARS:
                j += 1
            tokens.append(Token("name", text[i:j], i + 1))
            i = j
        elif c == "`":
            end = text.find("`", i + 1)
            if end < 0:
                raise RuleError("unterminated string", i + 1)
            tokens.append(Token("string", text[i + 1 : end], i + 1))
            i = end + 1
        elif c == '"':
            value, end = _read_interpreted(text, i)
            tokens.append(Token("string", value, i + 1))
            i = end
        elif c == "'":
            raise RuleError("single quotes are not allowed, use backticks or double quotes", i + 1)
        else:
            raise RuleError(f"unexpected character {c!r}", i + 1)
    tokens.append(Token("end", "", n + 1))
    return tokens


def _read_interpreted(text: str, start: int) -> tuple[str, int]:
    """Read a Go interpreted string starting at the quote; return (value, index after it).

    The token's column is the opening quote, so the caller stores ``start + 1``; this
    function returns the index after the closing quote, which the caller uses to go on.
    """
    out: list[str] = []
    i, n = start + 1, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            return "".join(out), i + 1
        if c == "\n":
            break
        if c != "\\":
            out.append(c)
            i += 1
            continue
        char, i = _read_escape(text, i)
        out.append(char)
    raise RuleError("unterminated string", start + 1)


def _read_escape(text: str, i: int) -> tuple[str, int]:
    """Decode the Go escape sequence at ``text[i] == '\\'``; return (char, next index)."""
    if i + 1 >= len(text):
        raise RuleError("unterminated string", i + 1)
    e = text[i + 1]
    if e in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[e], i + 2
    digits = text[i + 2 : i + 2 + _HEX_ESCAPES.get(e, 0)]
    if e in _HEX_ESCAPES and len(digits) == _HEX_ESCAPES[e] and _is_hex(digits):
        code = int(digits, 16)
        if code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
            return chr(code), i + 2 + len(digits)
    octal = text[i + 1 : i + 4]
    if len(octal) == 3 and all(ch in "01234567" for ch in octal) and int(octal, 8) < 256:
        return chr(int(octal, 8)), i + 4
    raise RuleError(f"invalid escape sequence '\\{e}'", i + 1)


def _is_hex(digits: str) -> bool:
    return all(ch in "0123456789abcdefABCDEF" for ch in digits)


class _Parser:
    """Recursive descent over the token list; one instance per rule."""

    def __init__(self, text: str, kind: RuleKind) -> None:
        self.tokens = tokenize(text)
        self.pos = 0
        self.kind = kind

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def take(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def expect(self, kind: str) -> Token:
        token = self.take()
        if token.kind != kind:
            raise RuleError(f"unexpected {token.describe()}, expected '{kind}'", token.column)
        return token

    def rule(self) -> Node:
        if self.peek().kind == "end":
            raise RuleError("empty rule", 1)
        node = self.or_expr()
        token = self.peek()
        if token.kind != "end":
            raise RuleError(f"unexpected {token.describe()}", token.column)
        return node

    def or_expr(self) -> Node:
        node = self.and_expr()
        while self.peek().kind == "||":
            self.take()
            node = Or(node, self.and_expr())
        return node

    def and_expr(self) -> Node:
        node = self.unary()
        while self.peek().kind == "&&":
            self.take()
            node = And(node, self.unary())
        return node

    def unary(self) -> Node:
        token = self.take()
        if token.kind == "!":
            return Not(self.unary())
        if token.kind == "(":
            node = self.or_expr()
            closing = self.take()
            if closing.kind != ")":
                raise RuleError("unbalanced parentheses: expected ')'", closing.column)
            return node
        if token.kind == "name":
            return self.matcher(token)
        raise RuleError(f"unexpected {token.describe()}", token.column)

    def matcher(self, name_token: Token) -> Matcher:
        name = resolve_name(name_token.value, self.kind, name_token.column)
        opening = self.take()
        if opening.kind != "(":
            raise RuleError(f"expected '(' after {name_token.value}", opening.column)
        args: list[Token] = []
        if self.peek().kind != ")":
            args.append(self.argument())
            while self.peek().kind == ",":
                self.take()
                args.append(self.argument())
        closing = self.take()
        if closing.kind != ")":
            raise RuleError(f"unexpected {closing.describe()}, expected ',' or ')'", closing.column)
        values = tuple(a.value for a in args)
        validate_matcher(name, values, name_token.column, tuple(a.column for a in args))
        return Matcher(name, values, name_token.column)

    def argument(self) -> Token:
        token = self.take()
        if token.kind != "string":
            raise RuleError(
                f"unexpected {token.describe()}, expected a string in backticks or double quotes",
                token.column,
            )
        return token


def parse_rule(text: str, kind: RuleKind = "http") -> Node:
    """Parse and validate ``text`` as an HTTP or TCP rule; raise ``RuleError`` if invalid."""
    return _Parser(text, kind).rule()
