"""`circuitBreaker`: stop sending requests to a service that is failing, as Traefik does
with oxy's breaker.

In standby every request goes on, and its status and latency are recorded
(edge/http/middlewares/breaker_metrics.py); at most every `checkPeriod` the `expression`
(edge/http/middlewares/breaker_expression.py) is evaluated on them, and when it holds the
breaker trips: for `fallbackDuration` every request is answered `responseCode` (503) with
its status text, without the service. Then it recovers for `recoveryDuration`, letting
through a share of the requests that grows linearly (oxy's ratio controller: the share let
through approaches half of them by the end), while the expression is still checked and
trips it again if it holds; after that it is back in standby. The metrics are reset when
it trips. One breaker per router and entrypoint in each worker: the state is per worker.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING

from proxynow.edge.http.middlewares.base import BuildContext, Reply, Step
from proxynow.edge.http.middlewares.breaker_expression import Predicate, parse
from proxynow.edge.http.middlewares.breaker_metrics import RollingMetrics

if TYPE_CHECKING:
    from proxynow.config.middlewares import Middleware
    from proxynow.edge.http.exchange import Exchange

__all__ = ["Breaker", "build", "problem"]

STANDBY, TRIPPED, RECOVERING = 0, 1, 2


class Breaker:
    """One circuit breaker's state; `now` is the worker loop's clock."""

    __slots__ = (
        "allowed",
        "check_period",
        "condition",
        "denied",
        "fallback",
        "fallback_duration",
        "last_check",
        "metrics",
        "passing",
        "recovery_duration",
        "recovery_start",
        "state",
        "until",
    )

    def __init__(
        self,
        condition: Predicate,
        check_period: float,
        fallback_duration: float,
        recovery_duration: float,
        response_code: int,
    ) -> None:
        self.condition = condition
        self.check_period = check_period
        self.fallback_duration = fallback_duration
        self.recovery_duration = recovery_duration
        text = _status_text(response_code).encode()
        self.fallback = Reply(response_code, ((b"Content-Type", b"text/plain"),), text)
        self.metrics = RollingMetrics()
        self.state = STANDBY
        self.until = 0.0
        self.last_check = 0.0
        self.recovery_start = 0.0
        self.allowed = self.denied = 0
        # The exchanges let through, by id: only they are recorded when they end.
        self.passing: set[int] = set()

    def admit(self, now: float) -> bool:
        """Whether a request arriving now goes on to the service."""
        if self.state == STANDBY:
            return True
        if self.state == TRIPPED:
            if now < self.until:
                return False
            self._recover(now)
        if now > self.until:  # recovered long enough
            self.state = STANDBY
            return True
        return self._ratio_allows(now)

    def ended(self, status: int, seconds: float, now: float) -> None:
        """A request let through ended: record it, and check the expression when due."""
        self.metrics.record(status, seconds, now)
        if now <= self.last_check:
            return
        self.last_check = now + self.check_period
        if self.state == TRIPPED or not self.condition(self.metrics.at(now)):
            return
        self.state = TRIPPED
        self.until = now + self.fallback_duration
        self.metrics.reset()

    def _recover(self, now: float) -> None:
        self.state = RECOVERING
        self.until = now + self.recovery_duration
        self.recovery_start = now
        self.allowed = self.denied = 0

    def _ratio_allows(self, now: float) -> bool:
        # oxy's ratio controller: let this one through if the share let through would
        # stay under the target, which grows from 0 to 0.5 over the recovery.
        span = self.recovery_duration or 1.0
        target = 0.5 * (now - self.recovery_start) / span
        if (self.allowed + 1) / (self.allowed + 1 + self.denied) < target:
            self.allowed += 1
            return True
        self.denied += 1
        return False


def _status_text(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return ""


def problem(middleware: Middleware) -> str | None:
    """Why this circuitBreaker cannot be built (its expression does not parse), or None."""
    options = middleware.circuit_breaker
    assert options is not None
    try:
        parse(options.expression)
    except ValueError as exc:
        return f"circuitBreaker expression {options.expression!r}: {exc}"
    return None


def build(middleware: Middleware, context: BuildContext) -> Step:
    """The `circuitBreaker` builder (registry.py)."""
    options = middleware.circuit_breaker
    assert options is not None
    breaker = Breaker(
        parse(options.expression),
        options.check_period if options.check_period > 0 else 0.1,
        options.fallback_duration if options.fallback_duration > 0 else 10.0,
        options.recovery_duration if options.recovery_duration > 0 else 10.0,
        options.response_code or 503,
    )
    passing = breaker.passing

    def request(exchange: Exchange) -> Reply | None:
        # The clock of the request's start: the loop's, read once per request already.
        if breaker.admit(exchange.start):
            passing.add(id(exchange))
            return None
        return breaker.fallback

    def outcome(exchange: Exchange, now: float) -> None:
        key = id(exchange)
        if key in passing:
            passing.discard(key)
            breaker.ended(exchange.status, now - exchange.start, now)

    return Step("circuitBreaker", request=request, outcome=outcome)
