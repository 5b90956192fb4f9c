"""The control plane's background threads run under SCHED_IDLE, below everything else.

The file provider's thread (watching, reading, parsing and validating the dynamic files)
and the aggregator's build thread (merging and checking the snapshot) take about 1.3 ms
of CPU per configuration change, on the cores the workers serve from. Nice 10
(`ipc/priority.py`) lowers their share but not their slice: once such a thread runs, a
worker that wakes with a request may wait for the scheduler's slice to end (about a
millisecond on Linux's EEVDF), and every request in flight waits with it. Under
SCHED_IDLE a thread runs only when nothing else wants the core, and a waking worker
preempts it at once; under saturation it still gets a small share (Linux gives it the
weight of nice 19's fifth, about 0.3% of a core beside one busy worker), which is enough
for a change every second or so: changes that come faster are coalesced, the newest wins.

Large work is not starved: a file of 1 MiB or more, a snapshot of 5,000 objects or more
(the sizes at which proxynow/heap.py also keeps the collector off) is read or built with
the thread back at SCHED_OTHER (`normal_while`; its nice value, the control plane's 10,
is kept), as at nice 10 it gets about a tenth of a busy core, not 0.3%: seconds of CPU
would otherwise take many minutes beside a saturated worker. Going back to SCHED_OTHER
needs CAP_SYS_NICE or an RLIMIT_NICE that allows the thread's nice value (root in a
container has it); without either the work stays under SCHED_IDLE.

Linux only (elsewhere, or if the kernel refuses, the thread keeps its priority). Threads
a SCHED_IDLE thread starts inherit it (watchfiles' own thread does). Off with
`PROXYNOW_BACKGROUND_SCHED=normal` in the control plane's environment (the threads then
run at the control plane's nice 10, as everything else of it). docs/operations.md.

Standard library only: the providers import it, below every layer of the control plane.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

__all__ = ["ENV", "enabled", "lower_this_thread", "normal_while"]

log = logging.getLogger(__name__)

ENV = "PROXYNOW_BACKGROUND_SCHED"
_OFF = "normal"
_ON = "idle"


def enabled() -> bool:
    """Whether background threads go to SCHED_IDLE (the environment variable is read
    each time: the control plane sets no other switch for it)."""
    value = os.environ.get(ENV, _ON).strip().lower()
    if value not in (_ON, _OFF):
        log.warning("%s=%r: expected %r or %r; using %r", ENV, value, _ON, _OFF, _ON)
    return value != _OFF


def lower_this_thread() -> bool:
    """Put the calling thread under SCHED_IDLE unless turned off; whether it now is."""
    if not enabled():
        return False
    policy = getattr(os, "SCHED_IDLE", None)
    if policy is None:
        return False
    try:
        os.sched_setscheduler(0, policy, os.sched_param(0))  # 0: this thread, on Linux
    except OSError as error:  # a kernel or sandbox that refuses it
        log.debug("background thread stays at its priority: %s", error)
        return False
    return True


@contextlib.contextmanager
def normal_while(large: bool) -> Iterator[None]:
    """With `large`, the calling thread runs at SCHED_OTHER in the block if it was under
    SCHED_IDLE (and is put back after); otherwise nothing changes."""
    idle = getattr(os, "SCHED_IDLE", None)
    if not large or idle is None or os.sched_getscheduler(0) != idle:
        yield
        return
    try:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except OSError as error:  # no CAP_SYS_NICE nor RLIMIT_NICE for it: stays idle
        log.debug("large background work stays under SCHED_IDLE: %s", error)
        yield
        return
    try:
        yield
    finally:
        os.sched_setscheduler(0, idle, os.sched_param(0))
