"""Idempotent read gating: several reasons may pause one transport's reading at once.

A client connection stops reading while a pipelined request waits its turn, while a request
body is held until the upstream connection exists, and while the upstream cannot take more
(its `pause_writing`). Each reason is a bit; the transport is paused when the first bit is
set and resumed when the last one clears, so the reasons never undo each other
(uvicorn's FlowControl, generalised to several reasons).
"""

from __future__ import annotations

import asyncio

__all__ = ["PIPELINE", "SHUTDOWN", "UPSTREAM_BUSY", "UPSTREAM_PENDING", "ReadGate"]

PIPELINE = 1
UPSTREAM_PENDING = 2
UPSTREAM_BUSY = 4
SHUTDOWN = 8


class ReadGate:
    """Pauses `transport` reading while any reason is set."""

    __slots__ = ("reasons", "transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.reasons = 0

    def block(self, reason: int) -> None:
        if not self.reasons:
            self.transport.pause_reading()
        self.reasons |= reason

    def unblock(self, reason: int) -> None:
        if self.reasons & reason:
            self.reasons &= ~reason
            if not self.reasons and not self.transport.is_closing():
                self.transport.resume_reading()
