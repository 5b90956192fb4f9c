"""One measurement: start a proxy for a scenario, check it proxies, load it, measure, stop it.

`Harness` owns the backend (started once per run, pinned to wrk's core) and the run directory.
`Harness.measure` never raises for a proxy's failure: a proxy that does not start, does not
proxy, or dies under load yields a `Measurement` carrying the reason, so that a run with a
half-written proxynow still produces a full report.
"""

from __future__ import annotations

import http.client
import subprocess
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from bench import procs
from bench.churn import Churner
from bench.configs import (
    BODIES,
    SMALL_BODY,
    UPLOAD_PATH,
    UPLOAD_SIZE,
    write_backend,
    write_nginx_proxy,
    write_traefik_files,
)
from bench.h2load import h2_answers, run_h2load
from bench.loadgen import Load, WrkResult, run_wrk
from bench.proxies import follows_files, launch, unsupported
from bench.report import MIB, Measurement
from bench.scenarios import Scenario

READY_TIMEOUT = 30.0  # Traefik with 1,000 routers, proxynow starting its workers
CHURN_PICKUP_TIMEOUT = 10.0  # Traefik coalesces provider changes over 2 s


@dataclass(frozen=True)
class Cores:
    load: str  # wrk and the backend (taskset list syntax)
    proxy: str  # the proxy under test
    shared: str  # every core, for the scenarios where the proxy has 2 workers

    def for_scenario(self, scenario: Scenario) -> tuple[str, str]:
        """(load cores, proxy cores) for the scenario."""
        if scenario.shared_cores:
            return self.shared, self.shared
        return self.load, self.proxy


@dataclass(frozen=True)
class Timing:
    duration: float  # seconds measured per proxy and scenario
    warmup: float  # seconds of load before measuring (pools filled, caches warm)


class Harness:
    def __init__(self, workdir: Path, cores: Cores, timing: Timing) -> None:
        self.workdir = workdir
        self.cores = cores
        self.timing = timing
        self.proxy_port, self.backend_port = procs.free_ports(2)
        self._backend: procs.Managed | None = None

    # --- backend ---------------------------------------------------------------------

    def start_backend(self) -> None:
        conf = write_backend(self.workdir, self.backend_port)
        self._backend = procs.start(
            "backend nginx",
            ["nginx", "-c", str(conf), "-e", str(conf.parent / "error.log")],
            self.cores.load,
            self.workdir / "backend.log",
        )
        try:
            self._check_backend(self._backend)
        except BaseException:
            self.stop_backend()
            raise

    def _check_backend(self, backend: procs.Managed) -> None:
        for path, body in BODIES.items():
            procs.wait_until(
                partial(procs.answers, self.backend_port, path, body),
                READY_TIMEOUT,
                f"the backend to serve {path}",
                backend,
            )
        reply = procs.http_request(
            self.backend_port, UPLOAD_PATH, method="POST", body=b"x" * UPLOAD_SIZE
        )
        if (reply.status, reply.body) != (200, SMALL_BODY):
            raise procs.ProcessFailed(f"backend answered a POST with {reply.status}")

    def stop_backend(self) -> None:
        if self._backend is not None:
            procs.stop(self._backend)
            self._backend = None

    def _pin_backend(self, cpus: str) -> None:
        if self._backend is not None:
            procs.pin_tree(self._backend.pid, cpu_set(cpus))

    # --- one measurement -----------------------------------------------------------------

    def measure(self, proxy: str, scenario: Scenario, round_no: int) -> Measurement:
        reason = unsupported(proxy, scenario)
        if reason:
            return Measurement(proxy, scenario.name, round_no, skipped=reason)
        directory = self.workdir / scenario.name
        files = write_traefik_files(directory, self.proxy_port, self.backend_port, scenario.setup)
        nginx_conf = write_nginx_proxy(
            directory, self.proxy_port, self.backend_port, scenario.setup
        )
        command = launch(proxy, files, nginx_conf, scenario.setup.workers)
        load_cpus, proxy_cpus = self.cores.for_scenario(scenario)
        self._pin_backend(load_cpus)
        log = directory / f"{proxy}-round{round_no}.log"
        try:
            server = procs.start(proxy, command.argv, proxy_cpus, log, command.env)
        except OSError as exc:
            return Measurement(proxy, scenario.name, round_no, error=f"cannot start: {exc}")
        try:
            return self._measure_running(server, scenario, round_no, files.dynamic, load_cpus)
        except (procs.ProcessFailed, RuntimeError, ValueError, OSError) as exc:
            return Measurement(proxy, scenario.name, round_no, error=str(exc))
        except subprocess.TimeoutExpired:
            return Measurement(proxy, scenario.name, round_no, error="wrk did not finish")
        finally:
            procs.stop(server)
            self._pin_backend(self.cores.load)

    def _measure_running(
        self,
        server: procs.Managed,
        scenario: Scenario,
        round_no: int,
        dynamic: Path,
        load_cpus: str,
    ) -> Measurement:
        self._wait_proxying(server, scenario)
        script = dynamic.parent / "load.lua"
        self._load(scenario.load, self.timing.warmup, script, load_cpus)
        churner = Churner(dynamic, self.backend_port, scenario.setup) if scenario.churn else None
        if churner:
            churner.start()
        try:
            window = self._measured_load(server, scenario, script, load_cpus)
        finally:
            if churner:
                churner.stop()
        if not server.alive():
            raise procs.ProcessFailed(
                f"{server.name} died under load (exit {server.popen.returncode}):\n"
                + server.log_tail()
            )
        measurement = _measurement(server.name, scenario, round_no, window)
        if churner is None:
            return measurement
        if not follows_files(server.name):
            return replace(measurement, churn_writes=churner.writes)
        applied = self._churn_applied(server, churner)
        return replace(measurement, churn_writes=churner.writes, churn_applied=applied)

    def _measured_load(
        self, server: procs.Managed, scenario: Scenario, script: Path, load_cpus: str
    ) -> _Window:
        """The measured wrk run, with the proxy tree's CPU time around it and memory after."""
        proxy_cores = cpu_set(self.cores.for_scenario(scenario)[1])
        busy_before = procs.cores_busy_seconds(proxy_cores)
        cpu_before = procs.tree_cpu_seconds(server.pid)
        result = self._load(scenario.load, self.timing.duration, script, load_cpus)
        proxy_cpu = procs.tree_cpu_seconds(server.pid) - cpu_before
        others = procs.cores_busy_seconds(proxy_cores) - busy_before - proxy_cpu
        share = max(0.0, others) / result.duration_s / len(proxy_cores) if result.duration_s else 0
        # Where wrk and the backend share the proxy's cores on purpose, "others" means nothing.
        return _Window(
            result,
            proxy_cpu,
            0.0 if scenario.shared_cores else share,
            procs.tree_memory(server.pid),
        )

    def _load(self, load: Load, duration: float, script: Path, load_cpus: str) -> WrkResult:
        """wrk, or h2load for an HTTP/2 load, on the load cores (a thread per core)."""
        threads = len(cpu_set(load_cpus))
        if load.h2:
            return run_h2load(load, self.proxy_port, duration, script.parent, load_cpus, threads)
        return run_wrk(load, self.proxy_port, duration, script, load_cpus, threads)

    def _wait_proxying(self, server: procs.Managed, scenario: Scenario) -> None:
        """Poll until a request through the proxy returns the backend's exact body."""
        load = scenario.load
        hosts = [load.hosts[0], load.hosts[-1]] if load.hosts else [None]
        for host in hosts:
            probe = _Probe(self.proxy_port, load, host)
            try:
                procs.wait_until(probe, READY_TIMEOUT, "it proxied", server)
            except procs.ProcessFailed as exc:
                what = f"{load.path} with Host {host or '127.0.0.1'}"
                raise procs.ProcessFailed(
                    f"{server.name} did not proxy {what} (last seen: {probe.last}): {exc}"
                ) from None

    def _churn_applied(self, server: procs.Managed, churner: Churner) -> bool:
        host = churner.newest_host
        if host is None:
            return False
        try:
            procs.wait_until(
                lambda: procs.answers(self.proxy_port, "/", SMALL_BODY, host=host),
                CHURN_PICKUP_TIMEOUT,
                f"{server.name} to route the newest churn router {host}",
                server,
            )
        except procs.ProcessFailed:
            return False
        return True


class _Probe:
    """One request through the proxy; remembers what it last saw, for the failure message."""

    def __init__(self, port: int, load: Load, host: str | None) -> None:
        self.port, self.load, self.host = port, load, host
        self.last = "no answer yet"

    def __call__(self) -> bool:
        load = self.load
        method, body = ("POST", b"x" * UPLOAD_SIZE) if load.post else ("GET", None)
        expected = SMALL_BODY if load.post else BODIES[load.served_path]
        if load.h2:
            ok, self.last = h2_answers(self.port, load, expected)
            return ok
        try:
            reply = procs.http_request(
                self.port,
                load.path,
                host=self.host,
                method=method,
                body=body,
                timeout=2.0,
                tls=load.tls,
            )
        except (OSError, http.client.HTTPException) as exc:
            self.last = f"{type(exc).__name__}: {exc}"
            return False
        if (reply.status, reply.body) == (200, expected):
            return True
        self.last = f"status {reply.status}, {len(reply.body)} bytes {reply.body[:60]!r}"
        return False


@dataclass(frozen=True)
class _Window:
    """What the measured wrk run saw, and what the proxy's process tree spent on it."""

    result: WrkResult
    proxy_cpu: float  # seconds
    others_share: float  # of the proxy's cores, used by other programs (0..1)
    memory: procs.Memory


def _measurement(proxy: str, scenario: Scenario, round_no: int, window: _Window) -> Measurement:
    result = window.result
    per_request = window.proxy_cpu * 1e6 / result.requests if result.requests else 0.0
    return Measurement(
        proxy=proxy,
        scenario=scenario.name,
        round=round_no,
        rps=result.rps,
        p50_us=result.p50_us,
        p99_us=result.p99_us,
        cpu_us_per_request=per_request,
        rss_mib=window.memory.rss_bytes / MIB,
        pss_mib=window.memory.pss_bytes / MIB,
        requests=result.requests,
        socket_errors=result.socket_errors,
        non_2xx=result.non_2xx,
        others_on_proxy_cores=window.others_share,
    )


def cpu_set(cpus: str) -> set[int]:
    """Parse taskset list syntax ("1", "0,1", "0-3")."""
    found: set[int] = set()
    for part in cpus.split(","):
        low, _, high = part.partition("-")
        found.update(range(int(low), int(high or low) + 1))
    return found
