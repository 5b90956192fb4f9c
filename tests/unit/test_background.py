"""proxynow/background.py: a background thread goes under SCHED_IDLE unless turned off,
and large work runs back at SCHED_OTHER (keeping its nice value), then idle again. That
needs CAP_SYS_NICE or a permissive RLIMIT_NICE (root here, as in a container): without it
the last test fails, as it should, since large work would then stay idle."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import pytest

from proxynow.background import ENV, lower_this_thread, normal_while


def in_thread(work: Callable[[], Any]) -> Any:
    """`work()` in a fresh thread (the policy is per thread: the test's own is untouched)."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(work()))
    thread.start()
    thread.join(10)
    assert result, "the thread failed"
    return result[0]


def test_a_lowered_thread_is_idle_and_its_creator_is_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    before = os.sched_getscheduler(0)
    assert in_thread(lambda: (lower_this_thread(), os.sched_getscheduler(0))) == (
        True,
        os.SCHED_IDLE,
    )
    assert os.sched_getscheduler(0) == before


def test_turned_off_the_thread_keeps_its_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "normal")
    assert in_thread(lambda: (lower_this_thread(), os.sched_getscheduler(0))) == (
        False,
        os.SCHED_OTHER,
    )


def test_large_work_runs_at_sched_other_with_its_nice_then_idle_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ENV, raising=False)

    def work() -> tuple[int, int, int, int, int]:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(os.getpriority(os.PRIO_PROCESS, tid) + 3, 19))
        nice = os.getpriority(os.PRIO_PROCESS, tid)
        lower_this_thread()
        with normal_while(False):
            small = os.sched_getscheduler(0)
        with normal_while(True):
            large = os.sched_getscheduler(0)
            large_nice = os.getpriority(os.PRIO_PROCESS, tid)
        return small, large, large_nice - nice, os.sched_getscheduler(0), nice

    small, large, nice_moved, after, _ = in_thread(work)
    assert (small, large, nice_moved, after) == (os.SCHED_IDLE, os.SCHED_OTHER, 0, os.SCHED_IDLE)
