"""Rule regexp microbenchmark: what one search costs on each engine, and the worst input.

Part 1: median ns of one search, on patterns and texts like routers hold, with Python's
``re`` (the spelling ``rules/linear_re.py`` gives), RE2 the way ``rules/goregexp.py``
calls it (the binding on UTF-8 bytes), and RE2 through the ``re2`` module's own wrapper
on str and on bytes, for comparison. Part 2: the slowest of a few adversarial texts of
64 KiB (the longest request target) and 1 MiB (the longest header block), per pattern, on
the engine ``compile_regexp`` picks, including the backtracking killers of issue 15.

Usage: ``python bench/regexp_bench.py [--repeat N]``. Runs a few seconds; prints tables.
"""

from __future__ import annotations

import argparse
import functools
import re
import statistics
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import re2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from proxynow.rules.goregexp import Search, compile_regexp
from proxynow.rules.linear_re import python_pattern

TYPICAL = [
    ("^/api/v[0-9]+/", "/api/v2/users/42"),
    ("^[a-z]+\\.example\\.com$", "shop.example.com"),
    ("^application/(json|xml)$", "application/json"),
    ("Mobile", "Mozilla/5.0 (Linux; Android 14) Mobile Safari/537.36"),
    ("(?i)^bearer [a-z0-9._-]+$", "Bearer abc.def-123"),
    ("\\.(jpg|png|gif)$", "/static/img/logo.png"),
]
WORST = [
    "^/p/(a+)+$",
    "(a|a)*$",
    "(a*)*b",
    "(.*a){20}",
    "(\\w+\\s?)+$",
    "^(([a-z])+.)+[A-Z]([a-z])+$",
    "[a-z]+\\.example\\.com$",
    "^[a-z]+\\.example\\.com$",
    "^.*$",
]
RUNS = ("a", "a ", "/p/a", "ab")


def ns_per_call(search: Callable[[Any], object], text: str | bytes, repeat: int) -> float:
    timer = timeit.Timer(functools.partial(search, text))
    number = 20_000
    return statistics.median(t / number * 1e9 for t in timer.repeat(repeat, number))


def typical(repeat: int) -> None:
    print(f"{'pattern':<28} {'re':>6} {'RE2':>6} {'re2 str':>8} {'re2 bytes':>10}  (ns/search)")
    for pattern, text in TYPICAL:
        python = python_pattern(pattern)
        wrapper = re2.compile(pattern).search
        cells = [
            ns_per_call(re.compile(python, re.ASCII).search, text, repeat) if python else None,
            ns_per_call(compile_regexp(pattern, "re2").search, text, repeat),
            ns_per_call(wrapper, text, repeat),
            ns_per_call(wrapper, text.encode(), repeat),
        ]
        shown = ["-" if c is None else f"{c:.0f}" for c in cells]
        print(f"{pattern:<28} {shown[0]:>6} {shown[1]:>6} {shown[2]:>8} {shown[3]:>10}")
    print("(re: - where not proven linear: those run on RE2)\n")


def _timed(search: Search, text: str) -> float:
    started = time.perf_counter()
    search(text)
    return time.perf_counter() - started


def worst(size: int) -> None:
    print(f"{'pattern':<30} {'engine':>6} {size >> 10:>6} KiB: slowest text, ms")
    for pattern in WORST:
        regexp = compile_regexp(pattern)
        slowest = 0.0
        for run in RUNS:
            for tail in ("", "!"):
                text = (run * (size // len(run)))[:size] + tail
                slowest = max(slowest, min(_timed(regexp.search, text) for _ in range(3)))
        print(f"{pattern:<30} {regexp.engine:>6} {slowest * 1e3:>14.3f}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    typical(args.repeat)
    worst(64 << 10)
    worst(1 << 20)


if __name__ == "__main__":
    main()
