"""A worker's access log: the writer thread and the log, from the static `accessLog`."""

from __future__ import annotations

import asyncio

from proxynow.config.static import AccessLog as AccessLogConfig
from proxynow.edge.core.linewriter import LineWriter
from proxynow.edge.core.metrics import WorkerMetrics
from proxynow.edge.http.access import AccessLog

__all__ = ["open_access_log"]


def open_access_log(
    config: AccessLogConfig, metrics: WorkerMetrics, loop: asyncio.AbstractEventLoop
) -> AccessLog:
    """Start this worker's writer thread (it opens `filePath` itself: opening a FIFO may
    block) and return the log dispatch records into."""
    writer = LineWriter(config.file_path, flush_at=config.buffering_size, loop=loop)
    return AccessLog(config, writer, metrics)
