"""The accumulator: totals across workers, and a restarted worker never takes one back."""

from __future__ import annotations

from typing import Any

from proxynow.edge.core.metrics import WorkerMetrics, request_key
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
    return totals.http.get(("web", "r@f", "s@f", code, method, "http"), [0.0])[0]


def test_from_worker_decodes_labels() -> None:
    totals = Totals.from_worker(_worker(2, posts=1, retries=1, tls=True).collect())
    assert totals.http[("web", "r@f", "s@f", "200", "GET", "http")] == [2, 0.02, 0, 20, 0, 0, 0, 0]
    assert totals.http[("web", "r@f", "s@f", "201", "POST", "http")] == [1, 0.5, 3, 10, 0, 1, 0, 0]
    assert totals.tls == {("web", "r@f", "s@f", "1.3", "TLS_AES_128_GCM_SHA256"): 2}
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
