"""The control plane's background threads (the file provider's, the snapshot build's) run
under SCHED_IDLE, its loop and the workers do not; `PROXYNOW_BACKGROUND_SCHED=normal`
turns it off; and a change still reaches a worker whose core is saturated.

proxynow/background.py says why: under SCHED_IDLE the parsing and building of a change
runs only when the worker's core is otherwise idle, and a waking worker preempts it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from tests.support.proc import HttpBackend, ProxynowProcess, http_get, poll, proxynow_factory

__all__ = ["proxynow_factory"]

Start = Callable[..., ProxynowProcess]
_STATIC = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}}
_SCHED_IDLE = 5  # `policy`, field 41 of /proc/PID/task/TID/stat (sched.h)
_SATURATED_BOUND = 10.0  # seconds a change may take to be served beside a busy loop


def thread_policies(pid: int) -> dict[int, int]:
    """The scheduling policy of every thread of `pid`, by thread id."""
    policies = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        policies[int(tid)] = int(fields[38])  # fields[0] is field 3 (state)
    return policies


def dynamic(backend: HttpBackend, *hosts: str) -> dict[str, Any]:
    routers = {
        host.replace(".", "-"): {"rule": f"Host(`{host}`)", "service": "app"} for host in hosts
    }
    service = {"loadBalancer": {"servers": [{"url": backend.url}]}}
    return {"http": {"routers": routers, "services": {"app": service}}}


def idle_threads(pid: int) -> set[int]:
    return {tid for tid, policy in thread_policies(pid).items() if policy == _SCHED_IDLE}


def test_background_threads_idle_loop_and_workers_not(proxynow_factory: Start) -> None:
    with HttpBackend("app") as backend:
        proxy = proxynow_factory(_STATIC, dynamic(backend, "a.test"), workers=1)
        # The provider's thread, the build's, and watchfiles' (started by the provider's).
        assert len(idle_threads(proxy.pid)) >= 2
        assert proxy.pid not in idle_threads(proxy.pid)  # the loop: health checks, API
        for worker in proxy.worker_pids():
            assert idle_threads(worker) == set()
        assert http_get(proxy.ports["web"], host="a.test")[0] == 200


def test_turned_off_by_the_environment(proxynow_factory: Start) -> None:
    with HttpBackend("app") as backend:
        proxy = proxynow_factory(
            _STATIC,
            dynamic(backend, "a.test"),
            workers=1,
            env={"PROXYNOW_BACKGROUND_SCHED": "normal"},
        )
        proxy.write_dynamic(dynamic(backend, "b.test"))  # the build thread runs too
        poll(lambda: http_get(proxy.ports["web"], host="b.test")[0] == 200, 10, "b.test")
        assert idle_threads(proxy.pid) == set()


def _pin(pid: int, core: int) -> None:
    """Every thread of `pid` (and what it starts later) on `core`."""
    subprocess.run(["taskset", "-a", "-cp", str(core), str(pid)], check=True, capture_output=True)


def test_newest_change_served_while_the_core_is_saturated(proxynow_factory: Start) -> None:
    """A busy loop at the workers' priority on their core: the control plane's idle
    threads get only a sliver of it, and the last of several writes must still win."""
    core = max(os.sched_getaffinity(0))
    with HttpBackend("app") as backend:
        proxy = proxynow_factory(_STATIC, dynamic(backend, "h0.test"), workers=1)
        for pid in [proxy.pid, *proxy.worker_pids()]:
            _pin(pid, core)
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            _pin(hog.pid, core)
            started = time.monotonic()
            for n in range(1, 6):  # one router added, the previous one dropped
                proxy.write_dynamic(dynamic(backend, f"h{n}.test"))
            port = proxy.ports["web"]
            poll(
                lambda: http_get(port, host="h5.test")[0] == 200,
                _SATURATED_BOUND,
                "the newest router to be served beside the busy loop",
            )
            took = time.monotonic() - started
            assert http_get(port, host="h4.test")[0] == 404  # the newest file won, whole
            assert idle_threads(proxy.pid)  # it was the idle threads that did the work
        finally:
            hog.kill()
            hog.wait()
        print(f"newest change served {took:.2f} s after the writes, beside a busy loop")
