"""buffering's `retryExpression`, as Traefik reads it (vulcand/predicate over oxy's buffer):
`IsNetworkError() && Attempts() < 2`, `ResponseCode() == 503`, joined with `&&` and `||`,
negated with `!`, grouped with parentheses. `Attempts()` is the attempt just made (1 for
the first), `ResponseCode()` its status (502 or 504 when the backend could not be reached
or did not answer in time), `IsNetworkError()` is ResponseCode() 502 or 504. `parse`
raises `ExpressionError` (circuitBreaker's, breaker_expression.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from proxynow.edge.http.middlewares.breaker_expression import COMPARISONS, ExpressionError

__all__ = ["Retried", "parse"]

# (attempts made, the status of the last one) → whether to send the request again.
Retried = Callable[[int, int], bool]

_MAX_LENGTH = 4096
_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+)|(?P<name>[A-Za-z_]\w*)|(?P<op>&&|\|\||[<>=!]=|[<>()!]))"
)
_INTEGERS: dict[str, Callable[[int, int], int]] = {
    "Attempts": lambda attempts, status: attempts,
    "ResponseCode": lambda attempts, status: status,
}


def _network(attempts: int, status: int) -> bool:
    return status in (502, 504)


def parse(text: str) -> Retried:
    """The predicate `text` says, or ExpressionError."""
    if len(text) > _MAX_LENGTH:
        raise ExpressionError("expression too long")
    tokens = _tokens(text)
    parser = _Parser(tokens)
    result = parser.disjunction()
    if parser.at < len(tokens):
        raise ExpressionError(f"unexpected {tokens[parser.at][1]!r}")
    return result


def _tokens(text: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    at = 0
    while text[at:].strip():
        match = _TOKEN.match(text, at)
        if match is None:
            raise ExpressionError(f"unexpected {text[at:].strip()[:10]!r}")
        kind = match.lastgroup
        assert kind is not None
        found.append((kind, match.group(kind)))
        at = match.end()
    return found


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.at = 0

    def peek(self) -> str:
        return self.tokens[self.at][1] if self.at < len(self.tokens) else ""

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.at >= len(self.tokens):
            raise ExpressionError("unexpected end of expression")
        token = self.tokens[self.at]
        if expected is not None and token[1] != expected:
            raise ExpressionError(f"expected {expected!r}, got {token[1]!r}")
        self.at += 1
        return token

    def disjunction(self) -> Retried:
        terms = [self.conjunction()]
        while self.peek() == "||":
            self.take()
            terms.append(self.conjunction())
        if len(terms) == 1:
            return terms[0]
        return lambda attempts, status: any(term(attempts, status) for term in terms)

    def conjunction(self) -> Retried:
        terms = [self.unary()]
        while self.peek() == "&&":
            self.take()
            terms.append(self.unary())
        if len(terms) == 1:
            return terms[0]
        return lambda attempts, status: all(term(attempts, status) for term in terms)

    def unary(self) -> Retried:
        if self.peek() == "!":
            self.take()
            inner = self.unary()
            return lambda attempts, status: not inner(attempts, status)
        if self.peek() == "(":
            self.take()
            inner = self.disjunction()
            self.take(")")
            return inner
        return self.comparison()

    def comparison(self) -> Retried:
        kind, name = self.take()
        if kind != "name":
            raise ExpressionError(f"expected a function, got {name!r}")
        self.take("(")
        self.take(")")
        if name == "IsNetworkError":
            return _network
        read = _INTEGERS.get(name)
        if read is None:
            raise ExpressionError(f"unsupported function: {name}")
        compare = COMPARISONS.get(self.peek())
        if compare is None:
            raise ExpressionError(f"{name}() must be compared with an integer")
        self.take()
        kind, literal = self.take()
        if kind != "number":
            raise ExpressionError(f"{name}() must be compared with an integer, got {literal!r}")
        value = int(literal)
        return lambda attempts, status: compare(read(attempts, status), value)
