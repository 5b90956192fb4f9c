"""What one configuration change costs: CPU of the control plane and of a worker, and the
worker's stall, for N routers, under the bench's churn writer (no load generator).

A real `proxynow run` (file provider, `workers` workers) serves N host-keyed routers; the
churn writer rewrites the dynamic file every 100 ms with one router added and one removed.
CPU per change is read from /proc (utime + stime of the control-plane process, and of each
worker) over the churn window, divided by the number of versions the control plane
published (the aggregator coalesces the writes of one throttle window into one change, so
a control plane that keeps up publishes more, cheaper changes; "per write" is its CPU per
file written). The stall is what each worker measured around its snapshot apply
(unpickle + graph build + swap: every request waits that long), reported over the
control socket.

    .venv/bin/python -m bench.change_cost 5 1000
    .venv/bin/python -m bench.change_cost 1000 --tree /tmp/old-checkout   # another version

`--tree` runs the proxynow package found there (e.g. an exported older commit, to get a
"before" figure); a version whose workers do not report stalls prints "n/a" for them.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.churn import Churner
from bench.configs import Setup, dynamic_config, static_config, write_yaml_atomic
from bench.procs import free_ports
from proxynow.control.run import control_request

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_REPO = Path(__file__).resolve().parent.parent
_BACKEND_PORT = 9  # nothing is proxied: only the configuration moves
_RUN = "import sys; from proxynow.cli import main; sys.exit(main())"


@dataclass(frozen=True)
class Result:
    routers: int
    changes: int
    writes: int  # files the churn writer wrote (several may be published as one change)
    control_ms: float  # control-plane CPU per change
    control_write_ms: float  # control-plane CPU per file written
    worker_ms: float  # CPU per change, per worker (mean over workers)
    stall_max_ms: float | None
    stall_median_ms: float | None


def _cpu_seconds(pid: int) -> float:
    """utime + stime of one process (all its threads), from /proc."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _status(path: Path) -> dict[str, Any]:
    return control_request(path, "status", timeout=5)


def _settled(path: Path, at_least: int, deadline: float) -> dict[str, Any]:
    """Poll until every worker is ready and serves the latest version (>= `at_least`)."""
    while time.monotonic() < deadline:
        try:
            status = _status(path)
        except OSError:
            time.sleep(0.05)  # polling interval of a condition with a deadline
            continue
        workers = status["workers"]
        if status["version"] >= at_least and all(
            w["ready"] and w["version"] == status["version"] for w in workers
        ):
            return status
        time.sleep(0.05)
    raise TimeoutError(f"proxynow did not settle on version >= {at_least}")


def measure(
    routers: int, seconds: float, workers: int, tree: Path, cpus: str, period: float = 0.1
) -> Result:
    with tempfile.TemporaryDirectory(prefix="change-cost-") as tmp:
        directory = Path(tmp)
        dynamic, control = directory / "dynamic.yml", directory / "control.sock"
        setup = Setup(workers=workers, routers=routers)
        write_yaml_atomic(dynamic, dynamic_config(_BACKEND_PORT, setup))
        static = static_config(free_ports(1)[0], dynamic, workers)
        (directory / "static.yml").write_text(yaml.safe_dump(static))
        env = dict(os.environ, PYTHONPATH=str(tree), PROXYNOW_CONTROL_SOCKET=str(control))
        argv = [sys.executable, "-c", _RUN, "run", "--config", str(directory / "static.yml")]
        with (directory / "proxy.log").open("wb") as log:
            proc = subprocess.Popen(
                ["taskset", "-c", cpus, *argv],
                env=env,
                cwd=directory,  # not the repository: `-c` puts the cwd first on sys.path
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            return _churn(proc, control, routers, setup, dynamic, seconds, period)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _churn(
    proc: subprocess.Popen[bytes],
    control: Path,
    routers: int,
    setup: Setup,
    dynamic: Path,
    seconds: float,
    period: float,
) -> Result:
    before = _settled(control, 1, time.monotonic() + 60)
    pids = [w["pid"] for w in before["workers"]]
    cpu_before = [_cpu_seconds(proc.pid)] + [_cpu_seconds(pid) for pid in pids]
    writes = int(seconds / period) + 20  # the window's writes, and the settling ones
    churner = Churner(dynamic, _BACKEND_PORT, setup, period=period, prerendered=writes)
    churner.start()
    time.sleep(seconds)  # the measurement window, not a readiness wait
    churner.stop()
    after = _settled(control, before["version"] + 1, time.monotonic() + 60)
    cpu_after = [_cpu_seconds(proc.pid)] + [_cpu_seconds(pid) for pid in pids]
    changes = after["version"] - before["version"]
    used = [(b - a) * 1000 / changes for a, b in zip(cpu_before, cpu_after, strict=True)]
    stalls = _window_stalls(before["workers"], after["workers"])
    return Result(
        routers=routers,
        changes=changes,
        writes=churner.writes,
        control_ms=used[0],
        control_write_ms=used[0] * changes / max(churner.writes, 1),
        worker_ms=statistics.fmean(used[1:]),
        stall_max_ms=max(stalls) if stalls else None,
        stall_median_ms=statistics.median(stalls) if stalls else None,
    )


def _window_stalls(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[float]:
    """The stalls of the applies that happened between the two status replies."""
    stalls: list[float] = []
    for old, new in zip(before, after, strict=True):
        if "stall_ms_recent" not in new:
            return []
        count = new["applied"] - old["applied"]
        stalls.extend(new["stall_ms_recent"][-count:] if count > 0 else [])
    return stalls


def _format(value: float | None) -> str:
    return "n/a" if value is None else f"{value:8.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.change_cost", description=__doc__.split("\n")[0])
    parser.add_argument("routers", type=int, nargs="+", help="router counts to measure")
    parser.add_argument("--seconds", type=float, default=6.0, help="churn window (s)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--tree", type=Path, default=_REPO, help="source tree to run")
    parser.add_argument("--cpus", default="1", help="taskset CPU list for proxynow")
    parser.add_argument(
        "--period",
        type=float,
        default=0.1,
        help="seconds between writes (0.1: the bench's churn; longer: one change per write)",
    )
    args = parser.parse_args(argv)
    print(
        f"{'routers':>8} {'writes':>7} {'changes':>8} {'control ms':>11} {'per write':>10} "
        f"{'worker ms':>10} {'stall max':>10} {'stall p50':>10}   (per published change)"
    )
    for routers in args.routers:
        r = measure(routers, args.seconds, args.workers, args.tree, args.cpus, args.period)
        print(
            f"{r.routers:8d} {r.writes:7d} {r.changes:8d} {r.control_ms:11.2f} "
            f"{r.control_write_ms:10.2f} {r.worker_ms:10.2f} "
            f"{_format(r.stall_max_ms):>10} {_format(r.stall_median_ms):>10}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
