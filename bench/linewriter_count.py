"""Instructions of the access-log writer thread's work per line, for callgrind.

The thread holds the GIL while it runs Python, so its per-line work is taken from the event
loop. This hands 200 batches of 250 lines of 640 bytes (a json line's size) to a regular
file as the thread does, run in the main thread inside one `functools.reduce`:

    PYTHONHASHSEED=0 PYTHONPATH=. valgrind --tool=callgrind --collect-atstart=no \\
        --toggle-collect=functools_reduce python bench/linewriter_count.py
    # Collected / 50,000 = instructions per line

It also runs against a tree whose `_write` took the batch alone (before the batch's byte
count was handed with it).
"""

from __future__ import annotations

import functools
import inspect
import os
import tempfile

from proxynow.edge.core.linewriter import LineWriter


def main() -> None:
    path = os.path.join(tempfile.mkdtemp(), "a.log")
    writer = LineWriter(path)
    writer.close()  # stop its thread: the steps below run here
    batch = [b"x" * 639 + b"\n"] * 250
    size = sum(map(len, batch))
    sized = len(inspect.signature(writer._write).parameters) == 2

    def step(_: object, __: object) -> None:
        if sized:
            writer._write(batch, size)  # type: ignore[call-arg]
            writer._done += size
        else:
            writer._write(batch)  # type: ignore[call-arg]
            writer._done += sum(len(line) for line in batch)

    step(None, None)
    functools.reduce(step, range(200), None)
    print(f"{200 * len(batch)} lines, {os.path.getsize(path)} bytes written")


if __name__ == "__main__":
    main()
