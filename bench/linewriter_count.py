"""Instructions of the access-log writer thread's work per line, for callgrind.

The thread holds the GIL while it runs Python, so its per-line work is taken from the event
loop. This hands 200 batches of 250 lines of 640 bytes (a json line's size) to a regular
file as the thread does, run in the main thread inside one `functools.reduce`:

    PYTHONHASHSEED=0 PYTHONPATH=. valgrind --tool=callgrind --collect-atstart=no \\
        --toggle-collect=functools_reduce python bench/linewriter_count.py
    # Collected / 50,000 = instructions per line

It also runs against a tree whose thread was handed `bytes` lines (before `submit`: the
loop encoded each line) to compare; since `submit`, the thread gets `str` lines and joins
and encodes the batch itself, the encoding of the lines counted here.
"""

from __future__ import annotations

import functools
import os
import tempfile
from typing import Any

from proxynow.edge.core.linewriter import LineWriter


def main() -> None:
    path = os.path.join(tempfile.mkdtemp(), "a.log")
    writer = LineWriter(path)
    writer.close()  # stop its thread: the steps below run here
    text = "x" * 639 + "\n"
    submitted = hasattr(writer, "submit")  # str lines, one join and encode per batch
    batch: list[Any] = [text if submitted else text.encode()] * 250
    size = sum(map(len, batch))

    def step(_: object, __: object) -> None:
        if submitted:
            writer._write(batch)
        else:
            writer._write(batch, size)  # type: ignore[call-arg]
        writer._done += size

    step(None, None)
    functools.reduce(step, range(200), None)
    print(f"{200 * len(batch)} lines, {os.path.getsize(path)} bytes written")


if __name__ == "__main__":
    main()
