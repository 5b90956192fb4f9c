"""buffering's retryExpression language: what parses, what it says, what is refused."""

from __future__ import annotations

import pytest

from proxynow.edge.http.middlewares.breaker_expression import ExpressionError
from proxynow.edge.http.middlewares.retry_expression import parse

CASES = [
    ("IsNetworkError() && Attempts() < 2", [(1, 502, True), (1, 504, True), (2, 502, False)]),
    ("ResponseCode() == 503", [(5, 503, True), (1, 500, False)]),
    ("ResponseCode() >= 500 || Attempts() <= 1", [(1, 200, True), (2, 200, False)]),
    ("!IsNetworkError() && (Attempts() != 3)", [(1, 200, True), (3, 200, False), (1, 502, False)]),
    ("  Attempts()<3&&ResponseCode()>499  ", [(2, 500, True), (2, 499, False)]),
]


@pytest.mark.parametrize(("text", "cases"), CASES)
def test_expressions(text: str, cases: list[tuple[int, int, bool]]) -> None:
    predicate = parse(text)
    for attempts, status, expected in cases:
        assert predicate(attempts, status) is expected, (attempts, status)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Attempts()", "Attempts() must be compared with an integer"),
        ("Attempts() < 1.5", "unexpected '.5'"),
        ("Latency() > 3", "unsupported function: Latency"),
        ("(IsNetworkError()", "unexpected end of expression"),
        ("IsNetworkError() IsNetworkError()", "unexpected 'IsNetworkError'"),
        ("Attempts() < 2 &", "unexpected '&'"),
        ("x" * 5000, "expression too long"),
    ],
)
def test_refused(text: str, reason: str) -> None:
    with pytest.raises(ExpressionError) as raised:
        parse(text)
    assert str(raised.value) == reason
