"""`LineBuffer` (edge/http/access_lines.py): what a request pays for its access-log line is
a list append; the writer thread gets batches: of 256 KiB, or 50 ms after a batch's first
line (one timer per batch, on a real event loop), or bufferingSize lines."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from proxynow.edge.http.access_lines import _BATCH, _MOST, FLUSH_DELAY, LineBuffer


class Batches:
    def __init__(self) -> None:
        self.batches: list[tuple[list[str], int]] = []

    def submit(self, lines: list[str], size: int) -> None:
        self.batches.append((lines, size))


def test_lines_wait_for_their_batch_with_one_timer_per_batch() -> None:
    async def run() -> tuple[Batches, int, list[int]]:
        loop = asyncio.get_running_loop()
        timers = 0

        def later(delay: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
            nonlocal timers
            timers += 1
            return loop.call_later(delay, callback)

        sink = Batches()
        buffer = LineBuffer(sink, 0, later)
        for i in range(1000):
            buffer.add(f"line {i}\n")
        before = len(sink.batches)
        await asyncio.sleep(FLUSH_DELAY * 3)
        counts = [before, len(sink.batches)]
        return sink, timers, counts

    sink, timers, counts = asyncio.run(run())
    assert counts == [0, 1] and timers == 1
    lines, size = sink.batches[0]
    assert lines == [f"line {i}\n" for i in range(1000)]
    assert size == sum(map(len, lines))


def test_a_full_batch_goes_at_once() -> None:
    async def run() -> Batches:
        sink = Batches()
        buffer = LineBuffer(sink, 0, asyncio.get_running_loop().call_later)
        line = "x" * 999 + "\n"
        for _ in range(3 * _BATCH // len(line)):
            buffer.add(line)
        return sink

    sink = asyncio.run(run())
    # 786 lines of 1,000: a batch is handed at its 263rd (the first past 256 KiB), twice;
    # the rest waits for its timer.
    assert [(len(lines), size) for lines, size in sink.batches] == [(263, 263_000)] * 2
    assert -(-_BATCH // 1000) == 263


def test_buffering_size_hands_every_n_lines_and_holds_at_most_a_mebibyte() -> None:
    sink = Batches()
    buffer = LineBuffer(sink, 5, None)
    for i in range(12):
        buffer.add(f"{i}\n")
    assert [len(lines) for lines, _ in sink.batches] == [5, 5]
    buffer.flush()  # the worker's tick, or its end
    assert [len(lines) for lines, _ in sink.batches] == [5, 5, 2]
    sink.batches.clear()
    huge = LineBuffer(sink, 10**9, None)
    for _ in range(3):
        huge.add("y" * (_MOST // 2) + "\n")
    assert len(sink.batches) == 1 and len(sink.batches[0][0]) == 2


def test_without_a_loop_every_line_goes_at_once() -> None:
    sink = Batches()
    buffer = LineBuffer(sink)
    buffer.add("a\n")
    buffer.add("b\n")
    assert sink.batches == [(["a\n"], 2), (["b\n"], 2)]
    buffer.flush()  # nothing left: nothing handed
    assert len(sink.batches) == 2
