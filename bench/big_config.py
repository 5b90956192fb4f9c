"""What a big or junk dynamic file costs a running proxynow (issue 15, item 6).

A real `proxynow run` (file provider, one worker by default) serves router `app`; a
poller sends keep-alive requests to it the whole time and records the slowest answer.
Then, in order:

1. `big`: the file is rewritten with N more host-keyed routers: seconds from the write
   until the last new router answers, the slowest poll meanwhile, and the worker's
   reported apply stalls;
2. `edit`: one of the N routers gets a new rule: control-plane and worker CPU for that
   one change (from /proc), and seconds until it serves;
3. `junk` (with `--junk-mb`): the file is replaced with that many MB of random keys:
   control-plane CPU and peak memory (VmHWM) until the provider has given up on it, the
   number of log lines it caused; then a real change is written and the seconds until it
   serves.

    .venv/bin/python -m bench.big_config 20000
    .venv/bin/python -m bench.big_config 20000 --junk-mb 50 --tree /tmp/old-checkout

The file texts are rendered before the poller starts (rendering 20,000 routers takes
longer than serving them, and would compete with the poller for this process's GIL).
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import os
import random
import signal
import string
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.procs import free_ports
from proxynow.control.run import control_request

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_REPO = Path(__file__).resolve().parent.parent
_RUN = "import sys; from proxynow.cli import main; sys.exit(main())"


def render(routers: int, backend: str, edited: int = -1, extra: str = "") -> str:
    """The dynamic file: router `app` plus `routers` host-keyed ones (router `edited`
    with another host), all to service `app`; `extra` is one more router's host."""
    lines = [
        "http:",
        "  routers:",
        "    app:",
        "      rule: Host(`app.test`)",
        "      service: app",
    ]
    for i in range(routers):
        host = f"edited{i}.bench" if i == edited else f"h{i:05d}.bench"
        lines += [f"    r{i:05d}:", f"      rule: Host(`{host}`)", "      service: app"]
    if extra:
        lines += ["    extra:", f"      rule: Host(`{extra}`)", "      service: app"]
    lines += ["  services:", "    app:", "      loadBalancer:", "        servers:"]
    lines += [f"          - url: {backend}"]
    return "\n".join(lines) + "\n"


def junk(megabytes: float, seed: int = 15) -> str:
    """About `megabytes` MB of YAML: a mapping of random keys to random short strings."""
    rng = random.Random(seed)
    letters = string.ascii_lowercase
    lines, size, target = [], 0, int(megabytes * 1_000_000)
    while size < target:
        key = "".join(rng.choices(letters, k=12))
        value = "".join(rng.choices(letters, k=20))
        line = f"{key}: {value}"
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines) + "\n"


def write_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def cpu_seconds(pid: int) -> float:
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Backend:
    """A threaded HTTP/1.1 backend answering 200 `ok`."""

    def __init__(self) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body are two writes: without this, Nagle holds the body back
            # until the proxy's delayed ACK (40 ms) of the headers.
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Poller(threading.Thread):
    """GET / with Host app.test on one keep-alive connection, in a loop; the slowest answer."""

    def __init__(self, port: int, host: str = "app.test") -> None:
        super().__init__(daemon=True)
        self.port, self.host = port, host
        self.stop = threading.Event()
        self.slowest = 0.0
        self.count = 0
        self.failures: list[object] = []
        self.slow: list[tuple[float, float]] = []  # (monotonic time, seconds) above 50 ms

    def reset(self) -> None:
        self.slowest, self.count, self.failures, self.slow = 0.0, 0, [], []

    def run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        while not self.stop.is_set():
            started = time.perf_counter()
            try:
                connection.request("GET", "/", headers={"Host": self.host})
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    self.failures.append(response.status)
            except (OSError, http.client.HTTPException) as exc:
                self.failures.append(exc)
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            took = time.perf_counter() - started
            if took > 0.05:
                self.slow.append((time.monotonic(), took))
            self.slowest = max(self.slowest, took)
            self.count += 1
            time.sleep(0.005)  # pacing: a poll every ~5 ms, not a busy loop
        connection.close()


def status_of(port: int, host: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", "/", headers={"Host": host, "Connection": "close"})
        response = connection.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        connection.close()


def wait_for(condition: Any, timeout: float, what: str) -> float:
    """Poll `condition` until true; the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.01)
    return time.monotonic() - started


def settled(control: Path, at_least: int) -> bool:
    try:
        status = control_request(control, "status", timeout=30)
    except OSError:
        return False
    return status["version"] >= at_least and all(
        w["ready"] and w["version"] == status["version"] for w in status["workers"]
    )


def run(routers: int, workers: int, tree: Path, junk_mb: float) -> None:
    backend = Backend()
    with tempfile.TemporaryDirectory(prefix="big-config-") as tmp:
        directory = Path(tmp)
        dynamic, control = directory / "dynamic.yml", directory / "control.sock"
        port = free_ports(1)[0]
        big = render(routers, backend.url)
        edited = render(routers, backend.url, edited=routers // 2)
        after_junk = render(routers, backend.url, edited=routers // 2, extra="after-junk.bench")
        junk_text = junk(junk_mb) if junk_mb else ""
        write_atomic(dynamic, render(0, backend.url))
        static = (
            f"entryPoints:\n  web:\n    address: 127.0.0.1:{port}\n"
            f"providers:\n  providersThrottleDuration: 10ms\n"
            f"  file:\n    filename: {dynamic}\n    watch: true\n"
            f"log:\n  level: INFO\nworkers: {workers}\n"
        )
        (directory / "static.yml").write_text(static)
        env = dict(os.environ, PYTHONPATH=str(tree), PROXYNOW_CONTROL_SOCKET=str(control))
        log_path = directory / "proxy.log"
        argv = [sys.executable, "-c", _RUN, "run", "--config", str(directory / "static.yml")]
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                argv,
                env=env,
                cwd=directory,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        poller = Poller(port)
        try:
            wait_for(lambda: settled(control, 1), 60, "the first snapshot")
            pids = [w["pid"] for w in control_request(control, "status")["workers"]]
            poller.start()
            wait_for(lambda: poller.count > 20, 30, "the poller")
            version = control_request(control, "status")["version"]

            poller.reset()
            written = time.monotonic()
            write_atomic(dynamic, big)
            last = f"h{routers - 1:05d}.bench"
            wait_for(lambda: status_of(port, last) == 200, 300, "the new routers")
            serving = time.monotonic() - written
            wait_for(lambda: settled(control, version + 1), 300, "the big snapshot")
            status = control_request(control, "status")
            stalls = [max(w["stall_ms_recent"][-1:] or [0]) for w in status["workers"]]
            print(
                f"big: {routers} routers serving after {serving:.2f} s; slowest poll "
                f"{poller.slowest * 1000:.1f} ms over {poller.count} polls, "
                f"{len(poller.failures)} failures; worker apply stall {stalls} ms",
                flush=True,
            )
            _slow_polls(poller, written)

            version = status["version"]
            cpu = [cpu_seconds(proc.pid)] + [cpu_seconds(pid) for pid in pids]
            poller.reset()
            written = time.monotonic()
            write_atomic(dynamic, edited)
            wait_for(lambda: settled(control, version + 1), 300, "the edit")
            serving = time.monotonic() - written
            time.sleep(0.3)  # let the provider's thread finish its bookkeeping
            used = [cpu_seconds(proc.pid) - cpu[0]] + [
                cpu_seconds(pid) - before for pid, before in zip(pids, cpu[1:], strict=True)
            ]
            status = control_request(control, "status")
            version = status["version"]
            stalls = [max(w["stall_ms_recent"][-1:] or [0]) for w in status["workers"]]
            print(
                f"edit: one router changed, serving after {serving:.2f} s; control CPU "
                f"{used[0] * 1000:.0f} ms, worker CPU {[round(u * 1000) for u in used[1:]]} ms, "
                f"stall {stalls} ms; slowest poll {poller.slowest * 1000:.1f} ms",
                flush=True,
            )

            if junk_text:
                lines_before = len(log_path.read_bytes().splitlines())
                cpu0 = cpu_seconds(proc.pid)
                written = time.monotonic()
                write_atomic(dynamic, junk_text)
                # Until the provider reported the file (an error line) and went quiet.
                quiet = _quiet(log_path, lines_before, 300)
                spent = cpu_seconds(proc.pid) - cpu0
                lines = len(log_path.read_bytes().splitlines()) - lines_before
                print(
                    f"junk: {len(junk_text) / 1e6:.0f} MB handled after {quiet:.1f} s; "
                    f"control CPU {spent:.2f} s, peak RSS {peak_rss_mb(proc.pid):.0f} MB, "
                    f"{lines} log lines; app still "
                    f"{status_of(port, 'app.test')}",
                    flush=True,
                )
                written = time.monotonic()
                write_atomic(dynamic, after_junk)
                wait_for(lambda: status_of(port, "after-junk.bench") == 200, 600, "after junk")
                print(f"junk: the next real change serves after {time.monotonic() - written:.2f} s")
        finally:
            poller.stop.set()
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            backend.close()


def _slow_polls(poller: Poller, since: float) -> None:
    if poller.slow:
        polls = ", ".join(f"{at - since:.2f} s: {took * 1000:.0f} ms" for at, took in poller.slow)
        print(f"  polls above 50 ms, after the write: {polls}")


def _quiet(log_path: Path, lines_before: int, timeout: float) -> float:
    """Seconds until the log grew past `lines_before` and then stayed unchanged for 2 s."""
    started = time.monotonic()
    size, since = log_path.stat().st_size, time.monotonic()
    grew = False
    while time.monotonic() - started < timeout:
        time.sleep(0.1)  # polling the log's size
        now = log_path.stat().st_size
        if now != size:
            size, since, grew = now, time.monotonic(), True
        elif grew and time.monotonic() - since > 2.0:
            return since - started
    raise TimeoutError("the log never went quiet")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.big_config", description=__doc__.split("\n")[0])
    parser.add_argument("routers", type=int)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--tree", type=Path, default=_REPO, help="source tree to run")
    parser.add_argument("--junk-mb", type=float, default=0.0)
    args = parser.parse_args(argv)
    run(args.routers, args.workers, args.tree, args.junk_mb)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
