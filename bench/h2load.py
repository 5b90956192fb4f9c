"""The HTTP/2 load generator: h2load (Debian's nghttp2-client), and its result as wrk's.

h2load speaks h2 over TLS (ALPN) to an https URL and prior-knowledge h2c to an http one.
`-c` connections each keep `-m` streams in flight, which is how browsers and gRPC clients
load a proxy. h2load prints no percentiles, so every request's latency goes to its log
file (`--log-file`: start time, status, microseconds to the end of the response) and the
percentiles are read from there.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from bench.loadgen import Load, WrkResult

_FINISHED = re.compile(r"finished in ([\d.]+)(m?s)")
_REQUESTS = re.compile(
    r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
    r"(\d+) errored, (\d+) timeout"
)
_STATUS = re.compile(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx")
_TRAFFIC = re.compile(r"traffic: .*?\((\d+)\) total")


def h2load_argv(load: Load, port: int, duration: float, log: Path, threads: int) -> list[str]:
    scheme = "https" if load.tls else "http"
    return [
        "h2load",
        f"-t{threads}",
        f"-c{max(load.connections, threads)}",
        f"-m{load.streams}",
        f"-D{max(1, round(duration))}",
        f"--log-file={log}",
        *(f"-H{header}" for header in load.headers),
        f"{scheme}://127.0.0.1:{port}{load.path}",
    ]


def run_h2load(
    load: Load, port: int, duration: float, workdir: Path, cpus: str, threads: int = 1
) -> WrkResult:
    """Run h2load pinned to `cpus` for `duration` seconds; the result in wrk's terms."""
    log = workdir / "h2load-requests.tsv"
    log.unlink(missing_ok=True)
    argv = ["taskset", "-c", cpus, *h2load_argv(load, port, duration, log, threads)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"h2load exited with {done.returncode}: {done.stderr.strip()[-500:]}")
    latencies = sorted(_latencies(log))
    return parse_h2load_output(done.stdout, latencies)


def parse_h2load_output(stdout: str, latencies: list[int]) -> WrkResult:
    """h2load's summary and the sorted per-request latencies (µs)."""
    finished, requests, status = (
        _FINISHED.search(stdout),
        _REQUESTS.search(stdout),
        _STATUS.search(stdout),
    )
    if finished is None or requests is None or status is None:
        raise ValueError(f"no h2load summary in its output:\n{stdout[-2000:]}")
    seconds = float(finished.group(1)) / (1000 if finished.group(2) == "ms" else 1)
    _, _, done, _, _, errored, timeout = (int(n) for n in requests.groups())
    traffic = _TRAFFIC.search(stdout)
    return WrkResult(
        requests=done,
        duration_s=seconds,
        p50_us=_percentile(latencies, 50.0),
        p99_us=_percentile(latencies, 99.0),
        max_us=float(latencies[-1]) if latencies else 0.0,
        bytes=int(traffic.group(1)) if traffic else 0,
        socket_errors=errored + timeout,
        non_2xx=int(status.group(3)) + int(status.group(4)),
    )


def _latencies(log: Path) -> list[int]:
    if not log.exists():
        return []
    values = []
    with log.open() as lines:
        for line in lines:
            fields = line.split("\t")
            if len(fields) >= 3:
                values.append(int(fields[2]))
    return values


def _percentile(sorted_values: list[int], percent: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, round(percent / 100 * (len(sorted_values) - 1)))
    return float(sorted_values[index])


def h2_answers(port: int, load: Load, expected: bytes) -> tuple[bool, str]:
    """One request over h2 (TLS) or prior-knowledge h2c with curl: whether it returned
    `expected`, and what was seen."""
    scheme = "https" if load.tls else "http"
    version = "--http2" if load.tls else "--http2-prior-knowledge"
    argv = ["curl", "-sk", version, "--max-time", "2", "-o", "-", "-w", "\n%{http_version}"]
    done = subprocess.run(
        [*argv, f"{scheme}://127.0.0.1:{port}{load.path}"],
        capture_output=True,
        timeout=10,
        check=False,
    )
    body, _, http_version = done.stdout.rpartition(b"\n")
    if done.returncode == 0 and http_version == b"2" and body == expected:
        return True, "ok"
    return False, f"curl exit {done.returncode}, HTTP/{http_version.decode()}, {body[:60]!r}"
