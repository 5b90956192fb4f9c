"""Benchmark proxynow side by side with Traefik and nginx: `python bench/run.py [--quick]`.

Starts the backend once, then for each round, each scenario and each proxy (the proxy order
rotates every round) starts that proxy alone, checks that it proxies, loads it with wrk and
stops it. Prints a markdown report and writes it, with the raw JSON, under bench/results/.
See docs/benchmarks.md for what each scenario measures and how.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import procs
from bench.harness import Cores, Harness, Timing, cpu_set
from bench.proxies import PROXIES, version
from bench.report import Measurement, render_markdown, summarise, to_json
from bench.scenarios import SCENARIOS, Scenario, select

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python bench/run.py",
        description="proxynow vs Traefik vs nginx, one proxy at a time, interleaved rounds.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 1 round, 2 s per measurement, 1 s warm-up"
    )
    parser.add_argument(
        "--scenario",
        action="append",
        metavar="NAME",
        help="run only this scenario (repeatable; baselines come along): "
        + ", ".join(s.name for s in SCENARIOS),
    )
    parser.add_argument(
        "--proxy",
        action="append",
        choices=PROXIES,
        metavar="NAME",
        help=f"run only this proxy (repeatable): {', '.join(PROXIES)}",
    )
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 3; quick: 1)")
    parser.add_argument(
        "--duration",
        type=int,
        default=None,
        help="seconds measured per proxy and scenario (default 10; quick: 2)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="seconds of unmeasured load first (default 2; quick: 1)",
    )
    parser.add_argument("--load-cpus", default="0", help="cores of wrk and the backend")
    parser.add_argument("--proxy-cpus", default="1", help="cores of the proxy")
    parser.add_argument("--output-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    quick = args.quick
    args.rounds = args.rounds or (1 if quick else 3)
    args.duration = args.duration or (2 if quick else 10)
    args.warmup = args.warmup or (1 if quick else 2)
    return args


def header(args: argparse.Namespace, argv: list[str], cores: Cores) -> dict[str, str]:
    cpu = _cpu_model()
    return {
        "Command": f"`{shlex.join(['python', 'bench/run.py', *argv])}`",
        "Date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "Machine": f"{os.cpu_count()} cores ({cpu}), Linux {platform.release()}, "
        f"load average at start {os.getloadavg()[0]:.2f}",
        "Pinning": f"wrk + backend on core(s) {cores.load}, proxy on core(s) {cores.proxy}; "
        f"workers-2: proxy, wrk and backend all share cores {cores.shared}",
        "Rounds": f"{args.rounds} x {args.duration} s per proxy and scenario "
        f"(after {args.warmup} s warm-up)",
        "Versions": "; ".join(f"{n} {version(n)}" for n in ("traefik", "nginx", "proxynow", "wrk")),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def rotated(proxies: list[str], round_no: int) -> list[str]:
    """Each round starts with a different proxy, so that none always runs first or last."""
    shift = round_no % len(proxies)
    return proxies[shift:] + proxies[:shift]


def run_rounds(
    harness: Harness, scenarios: list[Scenario], proxies: list[str], rounds: int
) -> list[Measurement]:
    measurements = []
    for round_no in range(rounds):
        for scenario in scenarios:
            for proxy in rotated(proxies, round_no):
                m = harness.measure(proxy, scenario, round_no)
                _progress(m)
                measurements.append(m)
    return measurements


def _progress(m: Measurement) -> None:
    if m.ok:
        status = (
            f"{m.rps:,.0f} req/s, p99 {m.p99_us / 1000:.2f} ms, "
            f"{m.cpu_us_per_request:.1f} µs CPU/req, errors {m.socket_errors}/{m.non_2xx}"
        )
    else:
        status = ("skipped: " + m.skipped) if m.skipped else ("FAILED: " + m.error.splitlines()[0])
    print(f"[round {m.round + 1}] {m.scenario:<14} {m.proxy:<9} {status}", file=sys.stderr)


def measure_all(
    args: argparse.Namespace, cores: Cores, scenarios: list[Scenario], proxies: list[str]
) -> list[Measurement]:
    with tempfile.TemporaryDirectory(prefix="proxynow-bench-") as tmp:
        workdir = Path(tmp)
        workdir.chmod(0o755)  # nginx workers run as an unprivileged user and read from here
        harness = Harness(workdir, cores, Timing(args.duration, args.warmup))
        try:
            harness.start_backend()
            return run_rounds(harness, scenarios, proxies, args.rounds)
        finally:
            harness.stop_backend()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    try:
        scenarios = select(args.scenario)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    proxies = [p for p in PROXIES if not args.proxy or p in args.proxy]
    cores = Cores(args.load_cpus, args.proxy_cpus, f"{args.load_cpus},{args.proxy_cpus}")
    missing = cpu_set(cores.shared) - os.sched_getaffinity(0)
    if missing:
        print(f"cores {sorted(missing)} are not available to this process", file=sys.stderr)
        return 2
    head = header(args, argv, cores)
    # The harness (and the churn writer in its thread) is load, not proxy: keep it off the
    # proxy's core, where it would be billed to whichever proxy happens to be running.
    os.sched_setaffinity(0, cpu_set(cores.load))
    try:
        measurements = measure_all(args, cores, scenarios, proxies)
    except procs.ProcessFailed as exc:  # the backend itself did not come up
        print(f"cannot run the benchmark: {exc}", file=sys.stderr)
        return 1
    head["Machine"] += f", at the end {os.getloadavg()[0]:.2f}"
    summaries = summarise(measurements)
    markdown = render_markdown(head, scenarios, proxies, summaries)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    (args.output_dir / f"{stamp}.md").write_text(markdown)
    data = to_json(head, measurements, summaries)
    (args.output_dir / f"{stamp}.json").write_text(json.dumps(data, indent=2))
    print(markdown)
    print(f"written: {args.output_dir / stamp}.md and .json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
