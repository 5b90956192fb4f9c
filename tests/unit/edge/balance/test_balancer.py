"""Weighted round robin scheduled EDF with Go's container/heap tie-breaking (pure)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from proxynow.edge.balance.wrr import Balancer, BalancerRegistry, InOrder, nested


def picks(balancer: Balancer[str], n: int) -> str:
    return "".join(balancer.pick() or "-" for _ in range(n))


def test_equal_weights_follow_go_heap_order() -> None:
    # Worked by hand: all deadlines tie at 1, so the order is the heap's layout after each
    # pop (swap root with last, sift down over n-1) and push (sift up): A, C, B, then
    # every window of three holds each server once.
    order = picks(Balancer([("A", 1), ("B", 1), ("C", 1)]), 9)
    assert order == "ACBCBABAC"
    assert all(sorted(order[i : i + 3]) == ["A", "B", "C"] for i in range(0, 9, 3))


@pytest.mark.parametrize(
    ("weights", "period", "expected_start"),
    [
        ({"A": 3, "B": 1}, 4, "AABA"),
        ({"A": 5, "B": 2, "C": 1}, 8, "AABAABAC"),
        ({"A": 1, "B": 2}, 3, "BAB"),
    ],
)
def test_unequal_weights_are_smooth_and_proportional(
    weights: dict[str, int], period: int, expected_start: str
) -> None:
    balancer = Balancer([(name, float(w)) for name, w in weights.items()])
    order = picks(balancer, period * 10)
    assert order.startswith(expected_start)
    for i in range(0, len(order), period):  # every period holds each exactly `weight` times
        assert Counter(order[i : i + period]) == Counter(weights)


def test_non_positive_weights_are_ignored_and_empty_gives_none() -> None:
    assert picks(Balancer([("A", 1), ("B", 0), ("C", -1)]), 3) == "AAA"
    assert Balancer[str]([]).pick() is None


def test_in_order_rotates_equal_weights_in_the_given_order() -> None:
    # Ties go to the child given first: plain turns, where `Balancer` gives "ACBCBA".
    assert picks(InOrder([("A", 1), ("B", 1), ("C", 1)]), 9) == "ABCABCABC"


def test_in_order_keeps_weights_and_health() -> None:
    balancer = InOrder([("A", 3.0), ("B", 1.0)], keys=["a", "b"])
    order = picks(balancer, 40)
    assert all(Counter(order[i : i + 4]) == {"A": 3, "B": 1} for i in range(0, 40, 4))
    balancer.set_down(frozenset({"a"}))
    assert picks(balancer, 3) == "BBB"


def test_nested_picks_through_the_chosen_child() -> None:
    inner = nested(InOrder([(lambda: "b", 1.0), (lambda: "c", 1.0)]))
    outer = nested(Balancer([(lambda: "a", 1.0), (inner, 1.0), (lambda: None, 0.0)]))
    assert [outer() for _ in range(4)] == ["a", "b", "a", "c"]
    assert nested(Balancer[Any]([]))() is None


def test_registry_keeps_cursor_for_unchanged_service() -> None:
    registry = BalancerRegistry()
    first = registry.get("s", ("A", "B", "C"), [("A", 1.0), ("B", 1.0), ("C", 1.0)])
    assert picks(first, 2) == "AC"
    again = registry.get("s", ("A", "B", "C"), [("a", 1.0), ("b", 1.0), ("c", 1.0)])
    assert again is first
    assert picks(again, 1) == "b"  # position kept, items rebound to the new graph's objects
    changed = registry.get("s", ("A", "B"), [("A", 1.0), ("B", 1.0)])
    assert changed is not first
    registry.retain(set())
    assert registry.get("s", ("A", "B"), [("A", 1.0), ("B", 1.0)]) is not changed
