"""The per-second rates of proxynow/observe/rates.py, from real worker counters (pure)."""

from __future__ import annotations

from typing import Any

from proxynow.edge.core.metrics import WorkerMetrics, request_key
from proxynow.observe.rates import RateMeter, quantile


def count(metrics: WorkerMetrics, router: str, service: str, status: int, seconds: float) -> None:
    stats = metrics.target("web", router, service)
    stats.observe(request_key(status, b"GET"), seconds, 0, 10)


def answer(worker: int, pid: int, metrics: WorkerMetrics) -> dict[str, Any]:
    return {"worker": worker, "pid": pid, "metrics": metrics.collect()}


def test_first_update_is_a_baseline_then_differences_per_name() -> None:
    meter = RateMeter()
    one, two = WorkerMetrics(), WorkerMetrics()
    count(one, "app@file", "app@file", 200, 0.002)
    assert meter.update([answer(0, 10, one), answer(1, 11, two)], 100.0, 1e9) is None
    for _ in range(6):
        count(one, "app@file", "app@file", 200, 0.004)
    for _ in range(3):
        count(two, "app@file", "app@file", 502, 0.2)
    count(two, "app@file", "app@file", 404, 0.002)
    frame = meter.update([answer(0, 10, one), answer(1, 11, two)], 102.0, 1e9 + 2)
    assert frame is not None
    assert (frame["time"], frame["interval"]) == (1e9 + 2, 2.0)
    app = frame["routers"]["app@file"]
    assert app["requests"] == 10 and app["rps"] == 5.0
    assert (app["errorRate"], app["clientErrorRate"]) == (0.3, 0.1)
    assert app["latencyMs"] == round(1000 * (6 * 0.004 + 3 * 0.2 + 0.002) / 10, 3)
    assert app["p95Ms"] == 300.0  # the 95th percentile is in the (0.1, 0.3] bucket
    assert frame["services"]["app@file"]["requests"] == 10
    assert frame["entrypoints"]["web"]["requests"] == 10
    # Nothing more happened: the next frame lists nobody.
    quiet = meter.update([answer(0, 10, one), answer(1, 11, two)], 103.0, 1e9 + 3)
    assert quiet is not None and quiet["routers"] == {} and quiet["entrypoints"] == {}


def test_a_restarted_worker_is_a_new_baseline_and_internals_are_left_out() -> None:
    meter = RateMeter()
    old = WorkerMetrics()
    for _ in range(50):
        count(old, "app@file", "app@file", 200, 0.001)
    count(old, "api@internal", "api@internal", 200, 0.001)
    meter.update([answer(0, 10, old)], 1.0, 1.0)
    new = WorkerMetrics()  # the same slot, a new process: its counters start again
    for _ in range(4):
        count(new, "app@file", "app@file", 200, 0.001)
    count(new, "api@internal", "api@internal", 200, 0.001)
    frame = meter.update([answer(0, 20, new)], 2.0, 2.0)
    assert frame is not None
    assert frame["routers"]["app@file"]["requests"] == 4  # never 4 - 50
    assert "api@internal" not in frame["routers"] and "api@internal" not in frame["services"]


def test_a_worker_that_does_not_answer_loses_nothing() -> None:
    meter = RateMeter()
    metrics = WorkerMetrics()
    meter.update([answer(0, 10, metrics)], 1.0, 1.0)
    for _ in range(3):
        count(metrics, "app@file", "app@file", 200, 0.001)
    assert meter.update([], 2.0, 2.0) == {
        "time": 2.0,
        "interval": 1.0,
        "entrypoints": {},
        "routers": {},
        "services": {},
    }
    frame = meter.update([answer(0, 10, metrics)], 3.0, 3.0)
    assert frame is not None and frame["routers"]["app@file"]["requests"] == 3


def test_reset_makes_the_next_update_a_baseline() -> None:
    meter = RateMeter()
    metrics = WorkerMetrics()
    meter.update([answer(0, 10, metrics)], 1.0, 1.0)
    meter.reset()
    count(metrics, "app@file", "app@file", 200, 0.001)
    assert meter.update([answer(0, 10, metrics)], 60.0, 60.0) is None


def test_quantile_is_the_bound_of_its_bucket() -> None:
    bounds = (0.1, 0.3, 1.2, 5.0)
    assert quantile(0.95, bounds, [0, 0, 0, 0, 0]) is None
    assert quantile(0.95, bounds, [100, 0, 0, 0, 0]) == 0.1
    assert quantile(0.5, bounds, [50, 50, 0, 0, 0]) == 0.1
    assert quantile(0.95, bounds, [50, 50, 0, 0, 0]) == 0.3
    assert quantile(0.95, bounds, [1, 0, 0, 0, 99]) == float("inf")
