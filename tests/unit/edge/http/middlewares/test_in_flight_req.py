"""inFlightReq: counted from the request hook to the outcome hook, per source."""

from __future__ import annotations

from proxynow.edge.http.middlewares.base import Reply

from .support_access import exchange, step


def test_the_amount_is_per_source_and_the_outcome_frees_it() -> None:
    built = step({"inFlightReq": {"amount": 2}})  # default source: the Host
    request, outcome = built.request, built.outcome
    assert request is not None and outcome is not None
    first, second, third = exchange(), exchange(), exchange()
    assert request(first) is None and request(second) is None
    refused = request(third)
    assert isinstance(refused, Reply) and refused.status == 429
    outcome(third, 1.0)  # refused: it never counted, its outcome frees nothing
    assert request(exchange()) is not None
    outcome(first, 1.0)
    outcome(first, 1.0)  # a second outcome for the same exchange changes nothing
    assert request(third) is None
    assert request(exchange()) is not None


def test_an_exchange_refused_earlier_in_the_chain_is_not_counted() -> None:
    built = step({"inFlightReq": {"amount": 1, "sourceCriterion": {"ipStrategy": {}}}})
    assert built.outcome is not None and built.request is not None
    built.outcome(exchange(), 1.0)  # never entered
    one = exchange("10.0.0.1")
    assert built.request(one) is None
    assert built.request(exchange("10.0.0.2")) is None  # another source
    assert built.request(exchange("10.0.0.1")) is not None
    built.outcome(one, 2.0)
    assert built.request(exchange("10.0.0.1")) is None
