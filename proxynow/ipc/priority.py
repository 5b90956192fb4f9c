"""CPU priority of the control plane against the data plane.

The control plane's work on a configuration change (reading files, building the
snapshot, pickling it) takes milliseconds of CPU on the cores the workers serve from.
At the same priority the kernel lets it run its whole slice while requests wait, which is
a latency spike on every change. Lowered by `CONTROL_PLANE_NICE`, it gets the core when a
worker has nothing to do and yields it as soon as a worker wakes up; under saturation it
still gets about a tenth of a core, enough to keep applying changes.

Linux keeps a nice value per thread and a new thread or child process inherits its
creator's, so every thread of the control plane is lowered, and each worker, which is
started by the lowered control plane, raises itself back to the priority the control
plane started with. Raising needs CAP_SYS_NICE (root in a container has it) or an
RLIMIT_NICE that allows it; without either the worker keeps the lower priority and says
so once.
"""

from __future__ import annotations

import contextlib
import logging
import os

__all__ = ["CONTROL_PLANE_NICE", "lower_process", "restore_worker"]

log = logging.getLogger(__name__)

CONTROL_PLANE_NICE = 10
_LOWEST = 19


def current() -> int:
    return os.getpriority(os.PRIO_PROCESS, 0)


def lower_process(increment: int = CONTROL_PLANE_NICE) -> int:
    """Lower every thread of this process by `increment`; the new nice value."""
    target = min(current() + increment, _LOWEST)
    for tid in _threads():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.setpriority(os.PRIO_PROCESS, tid, target)
    return target


def restore_worker(wanted: int) -> None:
    """Give this (worker) process back the control plane's original priority."""
    if current() <= wanted:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, 0, wanted)
    except PermissionError:
        log.warning(
            "worker %d runs at nice %d, below the control plane's original %d: raising it "
            "needs CAP_SYS_NICE",
            os.getpid(),
            current(),
            wanted,
        )


def _threads() -> list[int]:
    try:
        return [int(tid) for tid in os.listdir("/proc/self/task")]
    except FileNotFoundError:  # no /proc: the calling thread only
        return [0]
