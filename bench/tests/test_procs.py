"""Process control and /proc measurements, on real process trees."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import procs

# A parent that starts a CPU-burning child and waits; both in the same process group. The
# child stops by itself after a bounded number of iterations.
TREE = (
    "import subprocess, sys; "
    "child = subprocess.Popen([sys.executable, '-c', 'n = 0\\nwhile n < 3 * 10**8: n += 1']); "
    "child.wait()"
)


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[procs.Managed]:
    proc = procs.start("tree", [sys.executable, "-c", TREE], "0", tmp_path / "tree.log")
    try:
        yield proc
    finally:
        procs.stop(proc)


def test_tree_includes_children_and_their_cpu(tree: procs.Managed) -> None:
    procs.wait_until(lambda: len(procs.tree_pids(tree.pid)) == 2, 10, "the child", tree)
    child = next(pid for pid in procs.tree_pids(tree.pid) if pid != tree.pid)
    assert os.sched_getaffinity(child) == {0}
    procs.wait_until(lambda: procs.tree_cpu_seconds(tree.pid) > 0.05, 30, "CPU time", tree)
    memory = procs.tree_memory(tree.pid)
    assert memory.rss_bytes > memory.pss_bytes > 0


def test_stop_ends_the_whole_group(tree: procs.Managed) -> None:
    procs.wait_until(lambda: len(procs.tree_pids(tree.pid)) == 2, 10, "the child", tree)
    child = next(pid for pid in procs.tree_pids(tree.pid) if pid != tree.pid)
    procs.stop(tree)
    assert not tree.alive()

    def child_is_dead() -> bool:
        stat = procs.read_stat(child)  # reaped, or a zombie until init reaps it
        return stat is None or stat.state == "Z"

    procs.wait_until(child_is_dead, 10, "the child to die")


def test_wait_until_reports_an_early_exit(tmp_path: Path) -> None:
    proc = procs.start(
        "quitter",
        [sys.executable, "-c", "print('bad config'); raise SystemExit(3)"],
        "0",
        tmp_path / "q.log",
    )
    try:
        with pytest.raises(procs.ProcessFailed, match=r"exited with code 3 .*\n.*bad config"):
            procs.wait_until(lambda: False, 30, "readiness", proc)
    finally:
        procs.stop(proc)


def test_busy_cores_move_forward() -> None:
    before = procs.cores_busy_seconds({0, 1})
    procs.wait_until(
        lambda: procs.cores_busy_seconds({0, 1}) > before, 10, "the cores to do some work"
    )
