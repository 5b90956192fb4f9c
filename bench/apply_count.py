"""Instructions a worker spends on one configuration change, without processes or sockets.

bench/change_cost.py measures a change's CPU on a real `proxynow run` from /proc; on a shared
machine those figures swing with the host. This counts what the interpreter executes for the
same work, the same for the same code and input: a worker state serving N host-keyed routers
(as bench/configs.py writes them for routers-1000) receives the churn scenario's changes, one
router added and the oldest removed, each a `SnapshotDelta` pickled as the control plane
sends it; per change the worker unpickles it and runs `WorkerState.apply_steps` to the end
(the new graph swapped in), as edge/runtime/worker.py does.

    PYTHONHASHSEED=0 PYTHONPATH=. valgrind --tool=callgrind --collect-atstart=no \\
        --toggle-collect=functools_reduce --callgrind-out-file=/tmp/cg.out \\
        python bench/apply_count.py 1000 200
    callgrind_annotate /tmp/cg.out | head   # the measured changes' instructions; / 200

Without valgrind it also prints, in CPU time of the thread (`thread_time`: what the work
costs, not what other processes on a shared host add to it), the first build of the N
routers taken a step at a time as a worker does (its total and its longest step: the
worker yields to the loop between slices of steps, so the longest step bounds how long a
build holds the loop beyond its 10 ms slice), the median change and the longest step of a
change. `--live K` keeps K churn routers (the churn scenario's 5 by default).
"""

from __future__ import annotations

import argparse
import functools
import gc
import pickle
import statistics
import time
from collections.abc import Generator
from typing import Any

from proxynow.config.dynamic import DynamicConfig
from proxynow.config.static import StaticConfig
from proxynow.edge.graph.resources import GraphResources
from proxynow.edge.graph.state import WorkerState
from proxynow.edge.runtime.worker import worker_metrics
from proxynow.snapshot import Snapshot, SnapshotDelta

_SERVICE = {"loadBalancer": {"servers": [{"url": "http://127.0.0.1:9"}]}}


def _router(host: str) -> dict[str, Any]:
    return {"rule": f"Host(`{host}`)", "service": "backend@file", "entryPoints": ["web"]}


def base_config(routers: int, churn: list[str]) -> DynamicConfig:
    table = {f"r{i:04d}@file": _router(f"h{i:04d}.bench") for i in range(routers)}
    table.update({f"{h.replace('.', '-')}@file": _router(h) for h in churn})
    http = {"routers": table, "services": {"backend@file": _SERVICE}}
    return DynamicConfig.model_validate({"http": http})


def churned(config: DynamicConfig, added: str, removed: str) -> DynamicConfig:
    """The next configuration as the aggregator makes it: unchanged routers reused."""
    routers = dict(config.http.routers)
    del routers[f"{removed.replace('.', '-')}@file"]
    new = DynamicConfig.model_validate({"http": {"routers": {"x@file": _router(added)}}})
    routers[f"{added.replace('.', '-')}@file"] = new.http.routers["x@file"]
    return config.model_copy(update={"http": config.http.model_copy(update={"routers": routers})})


def blobs(routers: int, changes: int, live: int) -> tuple[Snapshot, list[bytes]]:
    """The first snapshot and `changes` pickled deltas of the churn on top of it."""
    hosts = [f"churn-{i:06d}.bench" for i in range(changes + live)]
    first = Snapshot(1, base_config(routers, hosts[:live]))
    previous, out = first, []
    for n in range(changes):
        config = churned(previous.config, hosts[n + live], hosts[n])
        snapshot = Snapshot(previous.version + 1, config)
        out.append(pickle.dumps(SnapshotDelta.between(previous, snapshot), pickle.HIGHEST_PROTOCOL))
        previous = snapshot
    return first, out


def timed(steps: Generator[None, None, Any], spans: list[float]) -> None:
    """Run the build's steps to the end, recording each step's duration."""
    mark = time.thread_time()
    for _ in steps:
        now = time.thread_time()
        spans.append(now - mark)
        mark = now
    spans.append(time.thread_time() - mark)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("routers", type=int)
    parser.add_argument("changes", type=int)
    parser.add_argument("--live", type=int, default=5)
    args = parser.parse_args()
    static = StaticConfig.model_validate({"entryPoints": {"web": {"address": ":80"}}})
    state = WorkerState(resources=GraphResources(metrics=worker_metrics(static)))
    first, deltas = blobs(args.routers, args.changes + 10, args.live)
    state.load(first, static)
    for blob in deltas[:10]:  # warm: imports done, caches filled
        state.apply(pickle.loads(blob), static)

    def change(_: object, blob: bytes) -> None:
        for _ in state.apply_steps(pickle.loads(blob), static):
            pass

    # Measured inside one C call: --collect-atstart=no --toggle-collect=functools_reduce
    functools.reduce(change, deltas[10:], None)
    routes = state.graph.http["web"].route_names
    assert len(routes) == args.routers + args.live, len(routes)
    # The same again, timed (indicative): a fresh state built a step at a time, then the
    # changes; the collector off as the worker keeps it during an apply.
    gc.disable()
    state = WorkerState(resources=GraphResources(metrics=worker_metrics(static)))
    build: list[float] = []
    start = time.thread_time()
    timed(state.apply_steps(first, static), build)
    built = time.thread_time() - start
    spans: list[float] = []
    totals = []
    for blob in deltas:
        start = time.thread_time()
        timed(state.apply_steps(pickle.loads(blob), static), spans)
        totals.append(time.thread_time() - start)
    gc.enable()
    print(
        f"{args.routers} routers: first build {built * 1000:.1f} ms in {len(build)} steps, "
        f"the longest {max(build) * 1000:.2f} ms; {args.changes} changes: median "
        f"{statistics.median(totals[10:]) * 1000:.2f} ms, longest step {max(spans) * 1000:.2f} ms"
    )


if __name__ == "__main__":
    main()
