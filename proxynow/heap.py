"""Keeping Python's cyclic garbage collector off large configurations while they are made.

A full collection walks every object the process holds: with 20,000 routers the control
plane holds some millions (the parsed file, the validated models, the merge, snapshots),
and reading a changed file or building a snapshot allocates enough to trigger several
full collections, 1.0-2.5 s of a one-router edit's 2-4 s. Making a large configuration
produces no cyclic garbage (its temporary objects go by reference counting: measured on
loads, errors included, and builds), so `collecting_later` turns the collector off while
one is made, then freezes what is alive (`gc.freeze`: later collections skip it) and turns
the collector back on. What is frozen is never collected: the cost is the cyclic garbage
of anything else that happened to be pending in the young generations at that moment,
once per large change. Threads may nest it (the file provider's thread, the aggregator's
build): the collector is on again when the last one is done.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collecting_later"]

_lock = threading.Lock()
_paused = 0  # how many `collecting_later` blocks are running
_was_enabled = False


@contextmanager
def collecting_later(large: bool = True) -> Iterator[None]:
    """No cyclic collection inside the block; at its end what is alive is frozen. A no-op
    unless `large` (a small configuration costs a collection nothing worth it)."""
    global _paused, _was_enabled
    if not large:
        yield
        return
    with _lock:
        if _paused == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _paused += 1
    try:
        yield
    finally:
        with _lock:
            _paused -= 1
            gc.freeze()
            if _paused == 0 and _was_enabled:
                gc.enable()
