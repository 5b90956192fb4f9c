"""Configuration churn: a router added and another removed every 100 ms through the file provider.

A background thread rewrites the dynamic file atomically (temp file + rename) on a fixed period
for as long as the measurement runs. The writer shares the load core with wrk, so it does as
little as it can there: the files' texts are rendered before the run starts, and a write is
open, write, rename (no fsync: nothing here has to survive a crash). The serving router of the
scenario is never touched, so every request must still succeed; after the run, the harness
checks that the proxy picked the changes up by requesting the newest churn router's Host.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from pathlib import Path

import yaml

from bench.configs import Setup, dynamic_config

PRERENDERED = 1200  # two minutes of writes at 100 ms; later ones are rendered as they come

CHURN_HOST = "churn-{:06d}.bench"


class Churner:
    """Rewrites `dynamic_path` every `period` seconds with a sliding window of extra routers."""

    def __init__(
        self,
        dynamic_path: Path,
        backend_port: int,
        setup: Setup,
        period: float = 0.1,
        live: int = 5,
        prerendered: int = PRERENDERED,
    ) -> None:
        self._path = dynamic_path
        self._backend_port = backend_port
        self._setup = setup
        self._period = period
        self._window: deque[str] = deque(maxlen=live)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-churn", daemon=True)
        self.writes = 0
        # Rendering is slow with many routers (1,200 texts of 1,000 routers took minutes):
        # a caller that knows how many writes it needs renders that many.
        self._texts = [self._render(n) for n in range(prerendered)]
        self.late_ticks = 0  # ticks that started after their slot: the writer fell behind

    @property
    def newest_host(self) -> str | None:
        return self._window[-1] if self._window else None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            self._write_next()
            next_tick += self._period
            delay = next_tick - time.monotonic()
            if delay < 0:
                self.late_ticks += 1
                next_tick = time.monotonic()
                continue
            # A periodic tick, not a readiness wait: Event.wait returns early on stop().
            self._stop.wait(delay)

    def _render(self, n: int) -> str:
        """The text of write `n`: the window's oldest router drops out as router n comes in."""
        first = max(0, n - self._window.maxlen + 1) if self._window.maxlen else 0
        hosts = tuple(CHURN_HOST.format(i) for i in range(first, n + 1))
        config = dynamic_config(self._backend_port, self._setup, hosts)
        return yaml.safe_dump(config, sort_keys=False)

    def _write_next(self) -> None:
        n = self.writes
        self._window.append(CHURN_HOST.format(n))
        text = self._texts[n] if n < len(self._texts) else self._render(n)
        temporary = self._path.with_name(f".{self._path.name}.churn")
        temporary.write_text(text)
        os.replace(temporary, self._path)
        self.writes += 1
