"""The control plane runs below its workers, and a restarted worker gets the workers' priority.

A configuration change costs the control plane milliseconds of CPU on the workers' cores;
at a lower priority it yields the core to a worker that has requests to serve.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

from proxynow.ipc.priority import CONTROL_PLANE_NICE
from tests.support.proc import ProxynowProcess, poll, proxynow_factory

__all__ = ["proxynow_factory"]

Start = Callable[..., ProxynowProcess]


def thread_nices(pid: int) -> set[int]:
    """The nice value of every thread of `pid` (field 19 of /proc/PID/task/TID/stat)."""
    values = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        values.add(int(fields[16]))
    return values


def test_control_plane_below_workers_and_restarted_worker_restored(
    proxynow_factory: Start,
) -> None:
    base = os.getpriority(os.PRIO_PROCESS, 0)
    proxy = proxynow_factory({"entryPoints": {"web": {"address": "127.0.0.1:0"}}}, workers=2)
    proxy.wait_serving()
    assert thread_nices(proxy.pid) == {min(base + CONTROL_PLANE_NICE, 19)}
    workers = proxy.worker_pids()
    assert len(workers) == 2
    assert all(thread_nices(pid) == {base} for pid in workers)

    victim = proxy.status()["workers"][0]["pid"]
    os.kill(victim, signal.SIGKILL)

    def replacement() -> int | None:
        worker = proxy.status()["workers"][0]
        return worker["pid"] if worker["pid"] != victim and worker["ready"] else None

    new_pid = poll(replacement, 30, "the killed worker to be replaced")
    assert thread_nices(new_pid) == {base}
    assert proxy.stop() == 0
