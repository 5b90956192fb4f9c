"""The copy of one request's body kept for a mirroring service's mirrors (edge/proxy/mirror.py
sends it): the front end adds each piece of the body as it sends it to the main server."""

from __future__ import annotations

from proxynow.edge.upstream.server import Mirror, Mirroring

__all__ = ["MAX_BODY", "MirrorCopy"]

# The copy of a body for mirrors with `maxBodySize: -1` (Traefik: no limit) stops here.
MAX_BODY = 16 << 20


class MirrorCopy:
    """What the chosen mirrors of one request will be sent: its body as it went to the main
    server (None once it grew past the limit: then nobody gets a copy)."""

    __slots__ = ("body", "chosen", "limit", "mirroring", "size")

    def __init__(
        self, mirroring: Mirroring, chosen: list[Mirror], pending: list[bytes] | None
    ) -> None:
        self.mirroring = mirroring
        self.chosen = chosen
        self.limit = mirroring.max_body if mirroring.max_body >= 0 else MAX_BODY
        self.body: list[bytes] | None = []
        self.size = 0
        for data in pending or ():
            self.add(data)

    def add(self, data: bytes) -> None:
        """A piece of the body, as sent to the main server (framing included)."""
        if self.body is None or not self.mirroring.mirror_body:
            return  # over the limit already; or no body copied, so none is too large
        self.size += len(data)
        if self.size > self.limit:
            self.body = None
        else:
            self.body.append(data)
