"""Process control for the benchmark harness.

Starts each server pinned to a set of cores (taskset) in its own process group, waits for it
by polling a condition with a deadline, measures the CPU time and memory of its whole process
tree from /proc, and stops it by PID (the whole group). Nothing here knows about proxies or
scenarios: it moves processes and reads /proc.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


class ProcessFailed(RuntimeError):
    """A managed process exited, or never became ready; the message carries its log tail."""


@dataclass
class Managed:
    """A started process: its Popen handle and the file its stdout and stderr go to."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 12) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])


def start(
    name: str,
    argv: list[str],
    cpus: str,
    log_path: Path,
    env: Mapping[str, str] | None = None,
) -> Managed:
    """Start argv pinned to `cpus` (taskset list syntax) as the leader of a new process group.

    taskset execs the command, so the returned PID is the server's own and its children (nginx
    workers, proxynow's data-plane workers) inherit both the affinity and the group.
    """
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            ["taskset", "-c", cpus, *argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=full_env,
            start_new_session=True,
        )
    return Managed(name, popen, log_path)


def stop(proc: Managed, grace: float = 10.0) -> None:
    """SIGTERM the process group, wait up to `grace` seconds, then SIGKILL what is left."""
    pgid = proc.pid
    _signal_group(pgid, signal.SIGTERM)
    try:
        proc.popen.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        _signal_group(pgid, signal.SIGKILL)
        proc.popen.wait()  # SIGKILL cannot be caught: this returns
    # Children that outlive their leader (a worker mid-drain) are still in the group.
    _signal_group(pgid, signal.SIGKILL)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def wait_until(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    proc: Managed | None = None,
    interval: float = 0.05,
) -> None:
    """Poll `condition` until it holds; fail early if `proc` exits, or at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return
        if proc is not None and not proc.alive():
            raise ProcessFailed(
                f"{proc.name} exited with code {proc.popen.returncode} before {what}:\n"
                + proc.log_tail()
            )
        if time.monotonic() > deadline:
            tail = f":\n{proc.log_tail()}" if proc is not None else ""
            raise ProcessFailed(f"timed out after {timeout:.0f} s waiting for {what}{tail}")
        time.sleep(interval)


def free_ports(count: int) -> list[int]:
    """`count` distinct ports the kernel considers free on 127.0.0.1 now.

    The harness starts servers that take a port from their config file, so it has to pick one
    before they start; the small race with other programs is acceptable for a benchmark run.
    All sockets stay open until every port is picked, so the ports differ.
    """
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes


def http_request(
    port: int,
    path: str,
    host: str | None = None,
    method: str = "GET",
    body: bytes | None = None,
    timeout: float = 5.0,
    tls: bool = False,
) -> Reply:
    """One HTTP/1.1 request to 127.0.0.1:port (HTTPS with `tls`, certificate not checked:
    the harness made it); raises OSError/HTTPException on failure."""
    conn: http.client.HTTPConnection
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Host": host} if host else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return Reply(response.status, response.read())
    finally:
        conn.close()


def answers(port: int, path: str, expected: bytes, host: str | None = None) -> bool:
    """True when GET path on port returns 200 with exactly the expected body."""
    try:
        reply = http_request(port, path, host=host, timeout=2.0)
    except (OSError, http.client.HTTPException):
        return False
    return reply.status == 200 and reply.body == expected


# --- /proc measurements -----------------------------------------------------------------


@dataclass(frozen=True)
class ProcStat:
    state: str  # R, S, D, Z (zombie: dead, waiting for its parent to reap it), ...
    ppid: int
    cpu_ticks: int  # utime + stime + cutime + cstime


def read_stat(pid: int) -> ProcStat | None:
    """Parse /proc/<pid>/stat; None if the process is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name may hold spaces or parentheses: fields start after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return ProcStat(fields[0], int(fields[1]), utime + stime + cutime + cstime)


def tree_pids(root: int) -> list[int]:
    """The root and all its live descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = read_stat(int(entry))
            if stat is not None:
                children.setdefault(stat.ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU seconds of the tree, including children it has already reaped.

    Threads are included: /proc/<pid>/stat sums them for the process.
    """
    ticks = 0
    for pid in tree_pids(root):
        stat = read_stat(pid)
        if stat is not None:
            ticks += stat.cpu_ticks
    return ticks / CLOCK_TICKS


@dataclass(frozen=True)
class Memory:
    rss_bytes: int  # sum of the processes' resident sets (counts shared pages once per process)
    pss_bytes: int  # proportional set size: shared pages split between their users


def tree_memory(root: int) -> Memory:
    rss = pss = 0
    for pid in tree_pids(root):
        rss += _status_kib(pid, "VmRSS:") * 1024
        pss += _rollup_kib(pid, "Pss:") * 1024
    return Memory(rss, pss)


def _status_kib(pid: int, key: str) -> int:
    return _field_kib(Path(f"/proc/{pid}/status"), key)


def _rollup_kib(pid: int, key: str) -> int:
    return _field_kib(Path(f"/proc/{pid}/smaps_rollup"), key)


def _field_kib(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def pin_tree(root: int, cpus: set[int]) -> None:
    """Move every process (and thread) of a running tree onto `cpus`."""
    for pid in tree_pids(root):
        with contextlib.suppress(FileNotFoundError):
            for tid in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(ProcessLookupError):
                    os.sched_setaffinity(int(tid), cpus)


def cores_busy_seconds(cpus: set[int]) -> float:
    """CPU seconds the given cores spent busy (anything but idle and iowait), from /proc/stat.

    Compared with the proxy's own CPU time over the same window, this shows how much of the
    proxy's cores other programs took: the machine is shared, and a noisy round should say so.
    """
    ticks = 0
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in values[:8])
            ticks += user + nice + system + irq + softirq + steal
    return ticks / CLOCK_TICKS
