"""circuitBreaker: its expression language, its rolling metrics and its states."""

from __future__ import annotations

import pytest

from proxynow.edge.http.middlewares.breaker_expression import ExpressionError, parse
from proxynow.edge.http.middlewares.breaker_metrics import RollingMetrics
from proxynow.edge.http.middlewares.circuit_breaker import RECOVERING, STANDBY, TRIPPED, Breaker
from proxynow.providers.docker.labels import decode_labels


class Fixed:
    def __init__(self, net: float = 0.0, codes: float = 0.0, latency: int = 0) -> None:
        self.net, self.codes, self.latency = net, codes, latency
        self.asked: list[tuple[int, int, int, int]] = []

    def network_error_ratio(self) -> float:
        return self.net

    def response_code_ratio(self, a: int, b: int, c: int, d: int) -> float:
        self.asked.append((a, b, c, d))
        return self.codes

    def latency_ms(self, quantile: float) -> int:
        return self.latency


GROUPED = "(NetworkErrorRatio() < 0.1 || NetworkErrorRatio() > 0.9) && " + (
    "LatencyAtQuantileMS(99.0) == 7"
)


@pytest.mark.parametrize(
    ("text", "metrics", "holds"),
    [
        ("NetworkErrorRatio() > 0.5", Fixed(net=0.6), True),
        ("NetworkErrorRatio() > 0.5", Fixed(net=0.5), False),
        ("NetworkErrorRatio() >= 0.5", Fixed(net=0.5), True),
        ("LatencyAtQuantileMS(50.0) > 100", Fixed(latency=101), True),
        ("LatencyAtQuantileMS(50.0) > 100", Fixed(latency=100), False),
        ("ResponseCodeRatio(500, 600, 0, 600) > 0.25", Fixed(codes=0.3), True),
        ("NetworkErrorRatio() > 0.5 || LatencyAtQuantileMS(50.0) > 100", Fixed(latency=200), True),
        ("NetworkErrorRatio() > 0.5 && LatencyAtQuantileMS(50.0) > 100", Fixed(latency=200), False),
        (
            GROUPED,
            Fixed(net=0.0, latency=7),
            True,
        ),
        ("NetworkErrorRatio() != 0.0", Fixed(), False),
    ],
)
def test_expressions_read_the_metrics(text: str, metrics: Fixed, holds: bool) -> None:
    assert parse(text)(metrics) is holds


def test_the_code_ratio_gets_its_four_arguments() -> None:
    metrics = Fixed()
    parse("ResponseCodeRatio(500, 600, 0, 600) > 0.25")(metrics)
    assert metrics.asked == [(500, 600, 0, 600)]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "NetworkErrorRatio() > 1",  # a ratio compares with a float, as in Traefik
        "LatencyAtQuantileMS(50.0) > 100.0",  # a latency with an integer
        "LatencyAtQuantileMS(50) > 100",  # the quantile is a float
        "ResponseCodeRatio(500, 600) > 0.5",
        "Unknown() > 0.5",
        "NetworkErrorRatio()",
        "0.5 < NetworkErrorRatio()",
        "NetworkErrorRatio() > 0.5 &&",
        "(NetworkErrorRatio() > 0.5",
        "NetworkErrorRatio() > 0.5 ; rm",
        "(" * 40 + "NetworkErrorRatio() > 0.5" + ")" * 40,
        "NetworkErrorRatio() > 0.5 || " * 1000,
    ],
)
def test_bad_expressions_are_refused(text: str) -> None:
    with pytest.raises(ExpressionError):
        parse(text)


def test_metrics_count_the_last_ten_seconds() -> None:
    metrics = RollingMetrics()
    for second in range(5):
        metrics.record(200, 0.01, 100.0 + second)
        metrics.record(502, 0.01, 100.0 + second)
    assert metrics.at(104.5).network_error_ratio() == 0.5
    metrics.record(200, 0.01, 112.0)  # 100.0-102.x have left the window
    assert metrics.at(112.0).network_error_ratio() == pytest.approx(2 / 5)
    assert metrics.at(112.0).response_code_ratio(500, 600, 0, 600) == pytest.approx(2 / 5)
    assert metrics.at(200.0).network_error_ratio() == 0.0


def test_latency_quantiles_within_one_percent() -> None:
    metrics = RollingMetrics()
    for ms in range(1, 101):
        metrics.record(200, ms / 1000, 50.0)
    assert abs(metrics.at(50.0).latency_ms(50.0) - 50) <= 1
    assert abs(metrics.latency_ms(99.0) - 99) <= 1
    assert RollingMetrics().latency_ms(50.0) == 0


def breaker() -> Breaker:
    return Breaker(parse("NetworkErrorRatio() > 0.5"), 0.1, 10.0, 10.0, 503)


def test_it_trips_on_the_expression_and_recovers_slowly() -> None:
    cb = breaker()
    assert cb.admit(1.0)
    cb.ended(502, 0.01, 1.0)  # the first check is due at once: 1/1 errors
    assert cb.state == TRIPPED
    assert not cb.admit(5.0) and not cb.admit(10.9)
    # After fallbackDuration: recovering, a share let through that grows towards half.
    let = [cb.admit(11.0 + i * 0.01) for i in range(100)]
    assert cb.state == RECOVERING and sum(let) < 10
    later = [cb.admit(20.0 + i * 0.001) for i in range(100)]
    assert sum(later) > 30
    assert cb.admit(21.5) and cb.state == STANDBY


def test_checks_wait_for_the_check_period_and_reset_on_trip() -> None:
    cb = breaker()
    cb.ended(200, 0.01, 1.0)  # checked: 0 errors
    cb.ended(502, 0.01, 1.05)  # not checked before 1.1
    cb.ended(502, 0.01, 1.06)
    assert cb.state == STANDBY
    cb.ended(502, 0.01, 1.2)  # 3/4 errors
    assert cb.state == TRIPPED
    assert cb.metrics.at(1.2).network_error_ratio() == 0.0  # reset when it tripped


def test_a_recovering_breaker_trips_again() -> None:
    cb = breaker()
    cb.ended(502, 0.01, 1.0)
    assert cb.state == TRIPPED
    now = 12.0
    while not cb.admit(now):  # recovering from 12.0: the first let through comes soon
        now += 0.01
    assert cb.state == RECOVERING and now < 13.0
    cb.ended(502, 0.01, now)
    assert cb.state == TRIPPED and not cb.admit(now + 1.0)


def test_labels_give_the_same_configuration_as_a_file() -> None:
    decoded = decode_labels(
        {
            "http.middlewares.lc.circuitbreaker.expression": "NetworkErrorRatio() > 0.30",
            "http.middlewares.lc.circuitbreaker.fallbackduration": "5s",
        }
    )
    assert decoded.raw == {
        "http": {
            "middlewares": {
                "lc": {
                    "circuitBreaker": {
                        "expression": "NetworkErrorRatio() > 0.30",
                        "fallbackDuration": "5s",
                    }
                }
            }
        }
    }
