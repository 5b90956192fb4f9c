"""The accumulator: totals across workers, and a restarted worker never takes one back."""

from __future__ import annotations

from typing import Any

from proxynow.edge.core.metrics import (
    LABEL_CAP,
    OVERFLOW_VALUE,
    VALUE_LIMIT,
    WorkerMetrics,
    request_key,
)
from proxynow.observe.totals import Accumulator, Totals


def _worker(gets: int, posts: int = 0, retries: int = 0, tls: bool = False) -> WorkerMetrics:
    metrics = WorkerMetrics()
    stats = metrics.target("web", "r@f", "s@f")
    bits = metrics.tls.bits("TLSv1.3", "TLS_AES_128_GCM_SHA256") if tls else 0
    for _ in range(gets):
        stats.observe(request_key(200, b"GET", bits), 0.01, 0, 10)
    for _ in range(posts):
        stats.observe(request_key(201, b"POST"), 0.5, 3, 10)
    for _ in range(retries):
        stats.retry()
    metrics.entrypoint("web").open_connections = 1
    return metrics


def _answer(worker: int, pid: int, metrics: WorkerMetrics) -> dict[str, Any]:
    return {"worker": worker, "pid": pid, "metrics": metrics.collect()}


def _count(totals: Totals, code: str = "200", method: str = "GET") -> float:
    return totals.http.get(("web", "r@f", "s@f", code, method, "http", ()), [0.0])[0]


def test_from_worker_decodes_labels() -> None:
    totals = Totals.from_worker(_worker(2, posts=1, retries=1, tls=True).collect())
    get = ("web", "r@f", "s@f", "200", "GET", "http", ())
    post = ("web", "r@f", "s@f", "201", "POST", "http", ())
    assert totals.http[get] == [2, 0.02, 0, 20, 0, 0, 0, 0]
    assert totals.http[post] == [1, 0.5, 3, 10, 0, 1, 0, 0]
    assert totals.tls == {("web", "r@f", "s@f", "1.3", "TLS_AES_128_GCM_SHA256", ()): 2}
    assert totals.retries == {"s@f": 1}
    assert totals.open_connections == {"web": 1}


def test_sums_every_worker() -> None:
    accumulator = Accumulator()
    totals = accumulator.update(
        [_answer(0, 10, _worker(3)), _answer(1, 11, _worker(4, 2))], [10, 11]
    )
    assert _count(totals) == 7
    assert _count(totals, "201", "POST") == 2
    assert totals.open_connections == {"web": 2}


def test_restarted_worker_does_not_go_back() -> None:
    accumulator = Accumulator()
    a, b = _worker(5, retries=2), _worker(4)
    first = accumulator.update([_answer(0, 10, a), _answer(1, 11, b)], [10, 11])
    assert _count(first) == 9
    # Worker 0 dies (pid 10 gone) and its slot gets pid 12, which starts from zero.
    replacement = _worker(1)
    second = accumulator.update([_answer(0, 12, replacement), _answer(1, 11, b)], [11, 12])
    assert _count(second) == 10
    assert second.retries == {"s@f": 2}
    assert second.open_connections == {"web": 2}  # the dead worker's connections are gone
    # A later scrape keeps the dead worker's last counters; the retired part never doubles.
    third = accumulator.update([_answer(0, 12, replacement), _answer(1, 11, b)], [11, 12])
    assert _count(third) == 10


def test_dead_before_any_answer_and_silent_workers() -> None:
    accumulator = Accumulator()
    accumulator.update([_answer(0, 10, _worker(3)), _answer(1, 11, _worker(2))], [10, 11])
    # Worker 1 is alive but busy: not answering keeps its last counters.
    totals = accumulator.update([_answer(0, 10, _worker(4))], [10, 11])
    assert _count(totals) == 6
    # Worker 1 then dies without answering again: its last answer becomes final.
    totals = accumulator.update([_answer(0, 10, _worker(4))], [10, 13])
    assert _count(totals) == 6
    assert totals.open_connections == {"web": 1}


def test_counters_never_decrease_over_a_sequence_of_restarts() -> None:
    accumulator = Accumulator()
    previous = 0.0
    alive = {0: 100, 1: 200}
    counts = {0: 0, 1: 0}
    for step in range(12):
        slot = step % 2
        if step % 3 == 2:  # a restart of this slot: new pid, counters from zero
            alive[slot] += 1
            counts[slot] = 0
        counts[slot] += step
        answers = [_answer(s, alive[s], _worker(counts[s])) for s in (0, 1)]
        total = _count(accumulator.update(answers, alive.values()))
        assert total >= previous
        previous = total


# ------------------------------------------------------------------ headerLabels


def _labelled(values: list[bytes], labels: dict[str, str] | None = None) -> WorkerMetrics:
    """A worker that served one GET per value of the `X-Tenant` header (b"": missing)."""
    metrics = WorkerMetrics(header_labels=labels or {"tenant": "X-Tenant"})
    stats = metrics.target("web", "r@f", "s@f")
    table = metrics.header_labels
    assert table is not None
    for value in values:
        stats.observe(request_key(200, b"GET") | table.bits((value,)), 0.01, 0, 10)
    return metrics


def _by_tenant(totals: Totals) -> dict[str, float]:
    return {key[6][0]: row[0] for key, row in totals.http.items()}


def test_header_values_become_series_and_missing_is_empty() -> None:
    accumulator = Accumulator(["tenant"])
    worker = _labelled([b"a", b"a", b"b", b""])
    totals = accumulator.update([_answer(0, 10, worker)], [10])
    assert _by_tenant(totals) == {"a": 2, "b": 1, "": 1}


def test_a_worker_folds_combinations_past_the_cap_into_other() -> None:
    values = [b"v%d" % i for i in range(LABEL_CAP + 50)]
    worker = _labelled(values)
    table = worker.header_labels
    assert table is not None and len(table.ids) == LABEL_CAP + 1  # the cap, and all-empty
    totals = Accumulator(["tenant"]).update([_answer(0, 10, worker)], [10])
    found = _by_tenant(totals)
    assert found.pop(OVERFLOW_VALUE) == 50
    assert found == {f"v{i}": 1 for i in range(LABEL_CAP)}


def test_values_are_cut_to_the_limit() -> None:
    worker = _labelled([b"x" * (VALUE_LIMIT + 1), b"x" * (VALUE_LIMIT + 2)])
    totals = Accumulator(["tenant"]).update([_answer(0, 10, worker)], [10])
    assert _by_tenant(totals) == {"x" * VALUE_LIMIT: 2}


def test_the_control_plane_caps_the_union_of_workers_and_never_goes_back() -> None:
    accumulator = Accumulator(["tenant"])
    # Two workers with disjoint values: 60 + 60 distinct, more than the cap together.
    a = _labelled([b"a%d" % i for i in range(60)])
    b = _labelled([b"b%d" % i for i in range(60)])
    first = accumulator.update([_answer(0, 10, a), _answer(1, 11, b)], [10, 11])
    assert len(first.http) == LABEL_CAP + 1  # the admitted ones and the overflow
    assert sum(row[0] for row in first.http.values()) == 120
    # Worker 0 restarts and sees new values: they fold into "other", nothing goes back.
    c = _labelled([b"c%d" % i for i in range(30)])
    second = accumulator.update([_answer(0, 12, c), _answer(1, 11, b)], [11, 12])
    assert sum(row[0] for row in second.http.values()) == 150
    for key, row in first.http.items():
        assert second.http[key][0] >= row[0], key
    assert len(second.http) == LABEL_CAP + 1


def test_two_labels_are_one_combination_in_label_name_order() -> None:
    metrics = WorkerMetrics(header_labels={"zone": "X-Zone", "app": "User-Agent"})
    table = metrics.header_labels
    assert table is not None
    assert table.labels == ("app", "zone") and table.headers == (b"user-agent", b"x-zone")
    stats = metrics.target("web", "r@f", "s@f")
    stats.observe(request_key(200, b"GET") | table.bits((b"curl", b"eu")), 0.01, 0, 10)
    totals = Accumulator(["zone", "app"]).update([_answer(0, 10, metrics)], [10])
    assert [key[6] for key in totals.http] == [("curl", "eu")]
