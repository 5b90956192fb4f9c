"""A worker's access log: the writer thread and the log, from the static `accessLog`."""

from __future__ import annotations

import asyncio

from proxynow.config.static import AccessLog as AccessLogConfig
from proxynow.edge.core.linewriter import LineWriter
from proxynow.edge.graph.state import WorkerState
from proxynow.edge.http.access import AccessLog

__all__ = ["open_access_log"]


def open_access_log(
    config: AccessLogConfig, state: WorkerState, loop: asyncio.AbstractEventLoop
) -> AccessLog:
    """Start this worker's writer thread (it opens `filePath` itself: opening a FIFO may
    block) and return the log dispatch records into; routers with
    `observability.accessLogs: false` are read from the configuration the worker serves."""
    writer = LineWriter(config.file_path)
    routers = lambda: state.snapshot.config.http.routers  # noqa: E731
    return AccessLog(config, writer, state.metrics, routers, later=loop.call_later)
