"""The copy of one request's body kept for a mirroring service's mirrors (edge/proxy/mirror.py
sends it): the front end adds each piece of the body as it sends it to the main server.

One request's copy is bounded by `maxBodySize` (or `MAX_BODY`); all the copies a worker
holds at once are bounded by its `BodyBudget` (`WORKER_BUDGET`, `MAX_HELD` bytes), so that
many concurrent large uploads cannot hold N times `maxBodySize` for mirrors. A copy that does
not fit is dropped (its mirrors are skipped and counted); the main request never fails for
it. What a copy holds is given back when it is sent (`release`) or when the request is
abandoned (the copy is freed with its exchange).
"""

from __future__ import annotations

from proxynow.edge.upstream.server import Mirror, Mirroring

__all__ = ["MAX_BODY", "MAX_HELD", "WORKER_BUDGET", "BodyBudget", "MirrorCopy"]

# The copy of a body for mirrors with `maxBodySize: -1` (Traefik: no limit) stops here.
MAX_BODY = 16 << 20
# Bytes of bodies a worker holds for mirrors at once, all requests together.
MAX_HELD = 64 << 20


class BodyBudget:
    """Bytes held for mirrors by one worker: `take` refuses what would pass `limit`."""

    __slots__ = ("held", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def take(self, size: int) -> bool:
        if self.held + size > self.limit:
            return False
        self.held += size
        return True

    def give(self, size: int) -> None:
        self.held -= size


# A worker is one process: this module's budget is the worker's.
WORKER_BUDGET = BodyBudget(MAX_HELD)


class MirrorCopy:
    """What the chosen mirrors of one request will be sent: its body as it went to the main
    server (None once it grew past the limit: then nobody gets a copy)."""

    __slots__ = ("body", "budget", "chosen", "held", "limit", "mirroring", "size")

    def __init__(
        self,
        mirroring: Mirroring,
        chosen: list[Mirror],
        pending: list[bytes] | None,
        budget: BodyBudget = WORKER_BUDGET,
    ) -> None:
        self.mirroring = mirroring
        self.chosen = chosen
        self.limit = mirroring.max_body if mirroring.max_body >= 0 else MAX_BODY
        self.budget = budget
        self.body: list[bytes] | None = []
        self.size = 0
        self.held = 0  # taken from the budget
        for data in pending or ():
            self.add(data)

    def add(self, data: bytes) -> None:
        """A piece of the body, as sent to the main server (framing included)."""
        if self.body is None or not self.mirroring.mirror_body:
            return  # over a limit already; or no body copied, so none is too large
        self.size += len(data)
        if self.size > self.limit or not self.budget.take(len(data)):
            self.release()
            self.body = None
            return
        self.held += len(data)
        self.body.append(data)

    def release(self) -> None:
        """Give back to the budget what this copy holds (sent, dropped or abandoned)."""
        if self.held:
            self.budget.give(self.held)
            self.held = 0

    def __del__(self) -> None:
        self.release()  # an abandoned request: its copy goes with its exchange
