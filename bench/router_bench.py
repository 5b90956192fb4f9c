"""Router microbenchmark: median time of one ``RouteTable.match`` with 10, 1,000 and 10,000
routers, for (a) host-keyed routers, (b) a mix of hosts, path prefixes, exact paths and
wildcards with a fixed handful (10) of regexp routers, and (c) the same mix where 2% of all
routers are regexps. Regexps cannot be indexed: (c) shows what a long regexp list costs.
A linear scan over compiled predicates is shown for comparison.

Usage: ``python bench/router_bench.py [--batches N]``. Runs a few seconds; prints a table.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from proxynow.rules import (
    Route,
    SimpleRequest,
    compile_predicate,
    compile_table,
    parse_rule,
)

SIZES = (10, 1_000, 10_000)
BATCH = 1_000


def host_keyed(n: int, rng: random.Random) -> tuple[list[Route[int]], list[SimpleRequest]]:
    routes = [Route(f"r{i}", f"Host(`h{i}.example.com`)", i) for i in range(n)]
    requests = [
        SimpleRequest.from_raw("/", host=f"h{rng.randrange(n)}.example.com:443")
        for _ in range(BATCH)
    ]
    return routes, requests


def _mixed_rule(i: int, regexp_every: int) -> str:
    kind = i % 100
    if i % regexp_every == regexp_every - 1:
        # Regexps cannot be indexed: every request evaluates those ranked above its route.
        return f"HostRegexp(`^[a-z]+\\.re{i}\\.example\\.com$`) || PathRegexp(`^/re{i}/[0-9]+$`)"
    if kind < 60:
        return f"Host(`s{i}.example.com`) && PathPrefix(`/api/v{i % 3}`)"
    if kind < 75:
        return f"Host(`s{i}.example.com`)"
    if kind < 85:
        return f"PathPrefix(`/p{i}/`)"
    if kind < 93:
        return f"Path(`/exact/{i}`) && Method(`GET`)"
    return f"Host(`*.w{i}.example.com`)"


def _mixed_request(i: int, regexp_every: int, rng: random.Random) -> SimpleRequest:
    kind = i % 100
    if i % regexp_every == regexp_every - 1:
        return SimpleRequest.from_raw(f"/re{i}/{rng.randrange(99)}", host="nomatch.example.org")
    if kind < 60:
        return SimpleRequest.from_raw(f"/api/v{i % 3}/users", host=f"s{i}.example.com")
    if kind < 75:
        return SimpleRequest.from_raw("/index.html", host=f"S{i}.example.com:80")
    if kind < 85:
        return SimpleRequest.from_raw(f"/p{i}/x?q=1", host="any.example.org")
    if kind < 93:
        return SimpleRequest.from_raw(f"/exact/{i}", host="any.example.org")
    return SimpleRequest.from_raw("/", host=f"x.w{i}.example.com")


def mixed(n: int, rng: random.Random) -> tuple[list[Route[int]], list[SimpleRequest]]:
    return _mixed(n, max(10, n // 10), rng)


def regexp_heavy(n: int, rng: random.Random) -> tuple[list[Route[int]], list[SimpleRequest]]:
    return _mixed(n, 50, rng)


def _mixed(
    n: int, regexp_every: int, rng: random.Random
) -> tuple[list[Route[int]], list[SimpleRequest]]:
    routes = [Route(f"r{i}", _mixed_rule(i, regexp_every), i) for i in range(n)]
    picks = [rng.randrange(n) for _ in range(BATCH)]
    requests = [_mixed_request(i, regexp_every, rng) for i in picks]
    # One request in ten matches nothing: the worst case of a scan.
    for k in range(0, BATCH, 10):
        requests[k] = SimpleRequest.from_raw("/missing", host="missing.example.org")
    return routes, requests


def linear(routes: Sequence[Route[int]]) -> Callable[[Any], int | None]:
    ordered = sorted(routes, key=lambda r: (-r.effective_priority(), r.name))
    compiled = [(compile_predicate(parse_rule(str(r.rule))), r.target) for r in ordered]

    def match(request: Any) -> int | None:
        for predicate, target in compiled:
            if predicate(request):
                return target
        return None

    return match


def median_us(match: Callable[[Any], Any], requests: Sequence[Any], batches: int) -> float:
    per_call = []
    for _ in range(batches):
        start = time.perf_counter_ns()
        for request in requests:
            match(request)
        per_call.append((time.perf_counter_ns() - start) / len(requests) / 1000)
    return statistics.median(per_call)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=15)
    args = parser.parse_args()
    rng = random.Random(1)
    rows = []
    workloads = (("host-keyed", host_keyed), ("mixed", mixed), ("regexp-2%", regexp_heavy))
    for label, build in workloads:
        for n in SIZES:
            routes, requests = build(n, rng)
            table = compile_table(routes)
            scan = linear(routes)
            for request in requests[:50]:
                assert table.match(request) == scan(request)
            indexed = median_us(table.match, requests, args.batches)
            scan_batches = max(1, args.batches // max(1, n // 100))
            scanned = median_us(scan, requests[: max(50, BATCH // max(1, n // 100))], scan_batches)
            rows.append((label, n, indexed, scanned))
    print(f"{'workload':<12} {'routers':>8} {'table µs':>10} {'linear µs':>11}")
    for label, n, indexed, scanned in rows:
        print(f"{label:<12} {n:>8,} {indexed:>10.2f} {scanned:>11.2f}")


if __name__ == "__main__":
    main()
