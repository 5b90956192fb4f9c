"""`providers.docker.constraints`: which containers the provider considers.

The expression language is Traefik's: ``Label(`key`, `value`)`` (exact match),
``LabelRegex(`key`, `regexp`)`` (Go's regexp: the whole value must match, as Traefik
anchors it), combined with `&&`, `||`, `!` and parentheses. `compile_constraints` parses
once into a predicate over a container's labels; a syntax error is a `ConstraintError`
with the column, reported as a provider error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from proxynow.rules.goregexp import RegexpError, compile_regexp

__all__ = ["ConstraintError", "Predicate", "compile_constraints"]

Predicate = Callable[[Mapping[str, str]], bool]
_TOKEN = re.compile(r"\s*(?:(&&|\|\||!|\(|\)|,)|(Label|LabelRegex)\b|`([^`]*)`)")


class ConstraintError(ValueError):
    """A constraints expression that does not parse."""


def compile_constraints(text: str) -> Predicate:
    """`text` as a predicate over labels; the empty expression accepts everything."""
    if not text.strip():
        return lambda labels: True
    parser = _Parser(text)
    predicate = parser.disjunction()
    if parser.peek() is not None:
        raise parser.error("unexpected input")
    return predicate


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, int]] = []
        position = 0
        while position < len(text):
            match = _TOKEN.match(text, position)
            if match is None or match.end() == position:
                if text[position:].strip() == "":
                    break
                raise ConstraintError(f"constraints: unexpected character at column {position + 1}")
            token = match[1] or match[2] or ("`" + (match[3] or ""))
            self.tokens.append((token, match.start(match.lastindex or 0) + 1))
            position = match.end()
        self.at = 0

    def error(self, message: str) -> ConstraintError:
        column = self.tokens[self.at][1] if self.at < len(self.tokens) else len(self.text) + 1
        return ConstraintError(f"constraints: {message} at column {column}")

    def peek(self) -> str | None:
        return self.tokens[self.at][0] if self.at < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise self.error(f"expected {expected or 'more input'}")
        self.at += 1
        return token

    def disjunction(self) -> Predicate:
        terms = [self.conjunction()]
        while self.peek() == "||":
            self.take()
            terms.append(self.conjunction())
        return terms[0] if len(terms) == 1 else (lambda labels: any(t(labels) for t in terms))

    def conjunction(self) -> Predicate:
        terms = [self.unary()]
        while self.peek() == "&&":
            self.take()
            terms.append(self.unary())
        return terms[0] if len(terms) == 1 else (lambda labels: all(t(labels) for t in terms))

    def unary(self) -> Predicate:
        token = self.peek()
        if token == "!":
            self.take()
            inner = self.unary()
            return lambda labels: not inner(labels)
        if token == "(":
            self.take()
            inner = self.disjunction()
            self.take(")")
            return inner
        if token in ("Label", "LabelRegex"):
            return self.matcher(self.take())
        raise self.error("expected Label, LabelRegex, ! or (")

    def matcher(self, kind: str) -> Predicate:
        self.take("(")
        key = self.string()
        self.take(",")
        value = self.string()
        self.take(")")
        if kind == "Label":
            return lambda labels: labels.get(key) == value
        try:
            # Go's regexp, as rules have it: linear time whatever a container's label says.
            search = compile_regexp(f"^(?:{value})$").search
        except RegexpError as exc:
            raise self.error(f"bad regular expression {value!r}: {exc}") from None
        return lambda labels: key in labels and bool(search(labels[key]))

    def string(self) -> str:
        token = self.peek()
        if token is None or not token.startswith("`"):
            raise self.error("expected a `quoted` string")
        self.take()
        return token[1:]
