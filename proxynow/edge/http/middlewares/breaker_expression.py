"""The circuit breaker's expression language, as Traefik reads it (vulcand/predicate over
oxy's metrics): `NetworkErrorRatio() > 0.5`, `LatencyAtQuantileMS(50.0) > 100`,
`ResponseCodeRatio(500, 600, 0, 600) > 0.25`, joined with `&&` and `||` and grouped with
parentheses. A comparison is a function on the left and a literal on the right, of the
function's type: `LatencyAtQuantileMS` compares with an integer, the ratios with a float
(`NetworkErrorRatio() > 1` is an error, as in Traefik). `parse` raises `ExpressionError`.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["COMPARISONS", "ExpressionError", "Metrics", "Predicate", "parse"]


class ExpressionError(ValueError):
    """An expression that does not parse, with the reason."""


class Metrics(Protocol):
    """What an expression reads (edge/http/middlewares/breaker_metrics.py)."""

    def network_error_ratio(self) -> float: ...
    def response_code_ratio(self, start_a: int, end_a: int, start_b: int, end_b: int) -> float: ...
    def latency_ms(self, quantile: float) -> int: ...


Predicate = Callable[[Metrics], bool]

_MAX_LENGTH = 4096  # an expression is a line of configuration, not a program
_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+\.\d*|\.\d+|\d+)|(?P<name>[A-Za-z_]\w*)|(?P<op>&&|\|\||[<>=!]=|[<>(),]))"
)
# The comparison operators of both expression languages (retry_expression.py uses them too).
COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


@dataclass(frozen=True, slots=True)
class _Function:
    arguments: tuple[type, ...]
    result: type  # int or float: the type the literal it is compared with must have


_FUNCTIONS = {
    "NetworkErrorRatio": _Function((), float),
    "LatencyAtQuantileMS": _Function((float,), int),
    "ResponseCodeRatio": _Function((int, int, int, int), float),
}


def parse(text: str) -> Predicate:
    """The expression as a predicate over the metrics."""
    if len(text) > _MAX_LENGTH:
        raise ExpressionError(f"expression longer than {_MAX_LENGTH} characters")
    parser = _Parser(_tokens(text))
    predicate = parser.disjunction()
    if parser.peek() is not None:
        raise ExpressionError(f"unexpected {parser.peek()!r}")
    return predicate


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None:
            raise ExpressionError(f"unexpected character {text[position:].lstrip()[:1]!r}")
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        position = match.end()
    if not tokens:
        raise ExpressionError("empty expression")
    return tokens


class _Parser:
    """Recursive descent: disjunction := conjunction ('||' conjunction)*;
    conjunction := term ('&&' term)*; term := '(' disjunction ')' | call op literal."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.at = 0
        self.depth = 0

    def peek(self) -> str | None:
        return self.tokens[self.at][1] if self.at < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        if self.at >= len(self.tokens):
            raise ExpressionError("unexpected end of expression")
        token = self.tokens[self.at]
        self.at += 1
        return token

    def expect(self, value: str) -> None:
        _, got = self.take()
        if got != value:
            raise ExpressionError(f"expected {value!r}, got {got!r}")

    def disjunction(self) -> Predicate:
        terms = [self.conjunction()]
        while self.peek() == "||":
            self.take()
            terms.append(self.conjunction())
        return terms[0] if len(terms) == 1 else _any(tuple(terms))

    def conjunction(self) -> Predicate:
        terms = [self.term()]
        while self.peek() == "&&":
            self.take()
            terms.append(self.term())
        return terms[0] if len(terms) == 1 else _all(tuple(terms))

    def term(self) -> Predicate:
        if self.peek() == "(":
            self.take()
            self.depth += 1
            if self.depth > 32:
                raise ExpressionError("parentheses nested too deep")
            inner = self.disjunction()
            self.expect(")")
            self.depth -= 1
            return inner
        read, result = self.call()
        _, op = self.take()
        compare = COMPARISONS.get(op)
        if compare is None:
            raise ExpressionError(f"expected a comparison, got {op!r}")
        literal = self.literal(result)
        return lambda metrics: compare(read(metrics), literal)

    def call(self) -> tuple[Callable[[Metrics], float | int], type]:
        kind, name = self.take()
        function = _FUNCTIONS.get(name) if kind == "name" else None
        if function is None:
            known = ", ".join(_FUNCTIONS)
            raise ExpressionError(f"unknown function {name!r} (known: {known})")
        self.expect("(")
        arguments: list[float | int] = []
        for index, wanted in enumerate(function.arguments):
            if index:
                self.expect(",")
            arguments.append(self.literal(wanted, name))
        self.expect(")")
        return _reader(name, arguments), function.result

    def literal(self, wanted: type, where: str = "") -> float | int:
        kind, text = self.take()
        if kind != "number":
            raise ExpressionError(f"expected a number, got {text!r}")
        is_float = "." in text
        if (wanted is int) == is_float:
            what = f"{where} argument" if where else "value"
            raise ExpressionError(f"{what} {text}: expected {wanted.__name__}")
        return float(text) if is_float else int(text)


def _reader(name: str, arguments: list[float | int]) -> Callable[[Metrics], float | int]:
    if name == "NetworkErrorRatio":
        return lambda metrics: metrics.network_error_ratio()
    if name == "LatencyAtQuantileMS":
        quantile = float(arguments[0])
        return lambda metrics: metrics.latency_ms(quantile)
    a, b, c, d = (int(x) for x in arguments)
    return lambda metrics: metrics.response_code_ratio(a, b, c, d)


def _any(terms: tuple[Predicate, ...]) -> Predicate:
    return lambda metrics: any(term(metrics) for term in terms)


def _all(terms: tuple[Predicate, ...]) -> Predicate:
    return lambda metrics: all(term(metrics) for term in terms)
