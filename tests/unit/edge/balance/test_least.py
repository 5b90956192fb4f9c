"""p2c and leasttime selection (edge/balance/least.py), pure: seeded RNGs, loads set by hand."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from proxynow.edge.balance.least import P2C, SAMPLES, LeastTime, Load, Tracked
from proxynow.edge.balance.wrr import Balancer, BalancerRegistry

ABC = [("A", 1.0), ("B", 1.0), ("C", 1.0)]
KEYS = ["A", "B", "C"]


def picks(balancer: Balancer[str], n: int) -> str:
    return "".join(balancer.pick() or "-" for _ in range(n))


def load_of(balancer: Tracked[str], name: str) -> Load:
    return balancer.loads[KEYS.index(name)]


def sampled(load: Load, *seconds: float) -> None:
    for value in seconds:
        load.first_byte(value)


# ---------------------------------------------------------------- p2c


def test_p2c_sends_to_the_less_loaded_of_two_distinct_draws() -> None:
    balancer = P2C(ABC, KEYS, random.Random(7))
    for name, inflight in zip(KEYS, (5, 0, 2), strict=True):
        load_of(balancer, name).inflight = inflight
    mirror = random.Random(7)  # replays the balancer's draws
    for _ in range(200):
        first, second = mirror.randrange(3), mirror.randrange(2)
        second += second >= first
        assert first != second
        drawn = {KEYS[first], KEYS[second]}
        expected = min(drawn, key=lambda n: load_of(balancer, n).inflight)
        assert balancer.pick() == expected


def test_p2c_never_picks_the_most_loaded_of_three() -> None:
    balancer = P2C(ABC, KEYS, random.Random(1))
    load_of(balancer, "A").inflight = 3
    counts = Counter(picks(balancer, 300))
    assert counts["A"] == 0
    assert counts["B"] > 50 and counts["C"] > 50  # B and C tie: the first drawn wins


def test_p2c_ties_go_to_the_first_draw_and_weights_do_not_count() -> None:
    balancer = P2C([("A", 1.0), ("B", 9.0)], ["A", "B"], random.Random(3))
    mirror = random.Random(3)
    for _ in range(50):
        first = mirror.randrange(2)
        mirror.randrange(1)
        assert balancer.pick() == "AB"[first]


def test_p2c_draws_servers_of_weight_zero_too_and_serves_one_child_directly() -> None:
    balancer = P2C([("A", 0.0), ("B", 1.0)], ["A", "B"], random.Random(0))
    assert set(picks(balancer, 20)) == {"A", "B"}  # as Traefik: p2c never reads weights
    balancer.set_down(frozenset({"B"}))
    assert balancer.only == "A"
    assert picks(balancer, 5) == "AAAAA"


@pytest.mark.parametrize("kind", [P2C, LeastTime])
def test_down_children_are_skipped_and_all_down_is_none(kind: type[Tracked[str]]) -> None:
    balancer = kind(ABC, KEYS)
    balancer.set_down(frozenset({"A"}))
    assert set(picks(balancer, 40)) == {"B", "C"}
    balancer.set_down(frozenset({"A", "C"}))
    assert balancer.only == "B"
    assert picks(balancer, 4) == "BBBB"
    balancer.set_down(frozenset(KEYS))
    assert picks(balancer, 3) == "---"
    balancer.set_down(frozenset())
    assert set(picks(balancer, 40)) == set(KEYS)


@pytest.mark.parametrize("kind", [P2C, LeastTime])
def test_rebind_keeps_the_loads_and_the_live_set(kind: type[Tracked[str]]) -> None:
    balancer = kind(ABC, KEYS)
    balancer.set_down(frozenset({"C"}))
    for load in balancer.loads:
        sampled(load, 0.010)  # leasttime: a cold server scores 0 whatever its load
    load_of(balancer, "A").inflight = 2
    balancer.rebind(["a", "b", "c"])
    assert set(picks(balancer, 20)) == {"b"}  # A is busier, C is down
    assert balancer.in_flight() == [2, 0, 0]


# ---------------------------------------------------------------- leasttime


def test_leasttime_cold_servers_tie_and_take_turns_by_deadline() -> None:
    # Deadlines start staggered (A 1, B 2); the first candidate with the smallest deadline
    # wins a tie, so A twice before the turns alternate (Traefik's selectWRR).
    assert picks(LeastTime([("A", 1.0), ("B", 1.0)], ["A", "B"]), 7) == "AABABAB"


def test_leasttime_weights_break_ties_in_proportion() -> None:
    counts = Counter(picks(LeastTime([("A", 3.0), ("B", 1.0)], ["A", "B"]), 400))
    assert abs(counts["A"] - 300) <= 1 and counts["A"] + counts["B"] == 400


def test_leasttime_prefers_the_faster_server() -> None:
    balancer = LeastTime(ABC, KEYS)
    sampled(load_of(balancer, "A"), 0.050, 0.070)  # 60 ms
    sampled(load_of(balancer, "B"), 0.010)  # 10 ms
    sampled(load_of(balancer, "C"), 0.030)  # 30 ms
    assert picks(balancer, 5) == "BBBBB"


def test_leasttime_counts_requests_in_flight() -> None:
    balancer = LeastTime(ABC, KEYS)
    sampled(load_of(balancer, "A"), 0.060)
    sampled(load_of(balancer, "B"), 0.010)
    sampled(load_of(balancer, "C"), 0.030)
    load_of(balancer, "B").inflight = 3  # 10 x 4 = 40 > 30
    assert balancer.pick() == "C"
    load_of(balancer, "C").inflight = 1  # 30 x 2 = 60 = A's 60 x 1 > B's 40
    assert balancer.pick() == "B"


def test_leasttime_divides_by_weight() -> None:
    balancer = LeastTime([("A", 1.0), ("B", 4.0)], ["A", "B"])
    sampled(balancer.loads[0], 0.020)  # 20 / 1
    sampled(balancer.loads[1], 0.060)  # 60 / 4 = 15
    assert picks(balancer, 3) == "BBB"


def test_a_server_without_a_sample_scores_zero_and_is_tried_first() -> None:
    balancer = LeastTime(ABC, KEYS)
    sampled(load_of(balancer, "A"), 0.001)
    sampled(load_of(balancer, "B"), 0.001)
    load_of(balancer, "C").inflight = 10  # 0 x 11 is still 0
    assert balancer.pick() == "C"


def test_ttfb_is_kept_in_whole_milliseconds_over_the_last_hundred() -> None:
    load = Load(1.0)
    sampled(load, 0.0009, 0.0019)  # 0 ms and 1 ms, as Go's Duration.Milliseconds
    assert load.mean == 0.5
    load = Load(1.0)
    sampled(load, *[0.010] * SAMPLES)
    assert load.mean == 10.0
    sampled(load, *[0.030] * (SAMPLES // 2))  # half the window replaced
    assert load.mean == 20.0
    sampled(load, *[0.030] * SAMPLES)
    assert (load.mean, load.count) == (30.0, SAMPLES)


# ---------------------------------------------------------------- registry


def test_the_registry_keeps_a_strategy_balancer_and_replaces_it_when_the_strategy_changes() -> None:
    registry = BalancerRegistry()
    first = registry.get("s", ("p2c", ABC), ABC, KEYS, P2C)
    first.loads[0].inflight = 1  # type: ignore[attr-defined]
    again = registry.get("s", ("p2c", ABC), [("a", 1.0), ("b", 1.0), ("c", 1.0)], KEYS, P2C)
    assert again is first and isinstance(again, P2C)
    assert again.in_flight() == [1, 0, 0]
    assert again.only is None and set(picks(again, 30)) <= {"b", "c"}
    other = registry.get("s", ("leasttime", ABC), ABC, KEYS, LeastTime)
    assert isinstance(other, LeastTime) and other is not first
    plain = registry.get("s", ("wrr", ABC), ABC, KEYS)
    assert type(plain) is Balancer
