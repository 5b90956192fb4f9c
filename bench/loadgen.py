"""The load generator: wrk, driven by a generated Lua script, and its result.

Every script ends with a `done()` hook that prints one JSON line (requests, duration, latency
percentiles, error counts) so that nothing is scraped from wrk's human-readable output. Host
rotation precomputes every request string in `init()`, so the per-request Lua cost is one table
lookup whatever the number of hosts.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.configs import UPLOAD_SIZE

RESULT_MARKER = "BENCH_RESULT "

_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, '
    .. '"p99_us": %d, "max_us": %d, "connect": %d, "read": %d, "write": %d, '
    .. '"status": %d, "timeout": %d}\\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50.0), latency:percentile(99.0), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""

_HOSTS = """
local hosts = {%s}
local requests_by_host = {}
local cursor = 0
init = function(args)
  for i, host in ipairs(hosts) do
    requests_by_host[i] = wrk.format(nil, nil, {Host = host})
  end
  -- Threads start at different hosts so that they do not walk the table in lockstep.
  cursor = math.random(#hosts) - 1
end
request = function()
  cursor = cursor %% #hosts + 1
  return requests_by_host[cursor]
end
"""

_POST = """
wrk.method = "POST"
wrk.body = string.rep("x", %d)
wrk.headers["Content-Type"] = "application/octet-stream"
"""


@dataclass(frozen=True)
class Load:
    """What wrk sends: connections, path, and how requests are shaped."""

    connections: int
    path: str = "/"
    hosts: tuple[str, ...] = ()  # rotate the Host header over these (empty: the URL's host)
    post: bool = False  # 64 KiB POST bodies
    close: bool = False  # `Connection: close`: a new TCP connection per request
    tls: bool = False  # HTTPS (with `close`: a full TLS handshake per request)
    headers: tuple[str, ...] = ()  # extra request header lines, "Name: value"
    backend_path: str = ""  # the path the backend sees, when a middleware rewrites `path`
    h2: bool = False  # HTTP/2 with h2load (bench/h2load.py): h2 over TLS, else h2c
    streams: int = 1  # with h2: streams in flight per connection (h2load -m)

    @property
    def served_path(self) -> str:
        return self.backend_path or self.path


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    p50_us: float
    p99_us: float
    max_us: float
    bytes: int
    socket_errors: int  # connect + read + write + timeout
    non_2xx: int  # wrk's `status` count: responses with a status of 400 or more

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def errors(self) -> int:
        return self.socket_errors + self.non_2xx


def lua_script(load: Load) -> str:
    parts = []
    if load.hosts:
        quoted = ", ".join(json.dumps(h) for h in load.hosts)
        parts.append(_HOSTS % quoted)
    if load.post:
        parts.append(_POST % UPLOAD_SIZE)
    parts.append(_DONE)
    return "\n".join(parts)


def wrk_argv(
    load: Load, port: int, duration: float, script: Path, threads: int, timeout_s: int = 5
) -> list[str]:
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{max(load.connections, threads)}",
        f"-d{max(1, round(duration))}s",
        f"--timeout={timeout_s}s",
        "-s",
        str(script),
    ]
    if load.close:
        argv += ["-H", "Connection: close"]
    for header in load.headers:
        argv += ["-H", header]
    scheme = "https" if load.tls else "http"
    return [*argv, f"{scheme}://127.0.0.1:{port}{load.path}"]


def parse_wrk_output(stdout: str) -> WrkResult:
    """The JSON line printed by the script's done() hook."""
    for line in stdout.splitlines():
        if line.startswith(RESULT_MARKER):
            data = json.loads(line[len(RESULT_MARKER) :])
            break
    else:
        raise ValueError(f"no {RESULT_MARKER.strip()} line in wrk output:\n{stdout[-2000:]}")
    socket_errors = sum(data[k] for k in ("connect", "read", "write", "timeout"))
    return WrkResult(
        requests=data["requests"],
        duration_s=data["duration_us"] / 1e6,
        p50_us=float(data["p50_us"]),
        p99_us=float(data["p99_us"]),
        max_us=float(data["max_us"]),
        bytes=data["bytes"],
        socket_errors=socket_errors,
        non_2xx=data["status"],
    )


def run_wrk(
    load: Load, port: int, duration: float, script: Path, cpus: str, threads: int = 1
) -> WrkResult:
    """Run wrk pinned to `cpus` for `duration` seconds (whole seconds: wrk's resolution)."""
    script.write_text(lua_script(load))
    argv = ["taskset", "-c", cpus, *wrk_argv(load, port, duration, script, threads)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited with {done.returncode}: {done.stderr.strip()[-500:]}")
    return parse_wrk_output(done.stdout)
