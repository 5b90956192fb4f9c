"""`inFlightReq`: at most `amount` requests in flight per source; the next gets 429 with
the body `max connections reached: <amount>`.

The source is the `sourceCriterion` key (source.py), the request's Host when none is set,
as in Traefik (traefik pkg/middlewares/inflightreq/, oxy's connlimit). A request counts
from its request hook to its outcome hook, which dispatch runs once per exchange however
it ends (relayed, answered by a later step, refused, the client gone: edge/proxy/dispatch.py
`outcome`), so the count cannot leak. The exchanges counted are remembered by identity:
an exchange refused before this step (an auth step earlier in the chain) or by this step
is not counted and its outcome does nothing. The table holds only sources with requests
in flight, so its size is bounded by the connections the worker holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proxynow.edge.http.middlewares.base import BuildContext, Reply, Step
from proxynow.edge.http.middlewares.source import source_criterion

if TYPE_CHECKING:
    from proxynow.config.middlewares import Middleware
    from proxynow.edge.http.exchange import Exchange

__all__ = ["build"]


def build(middleware: Middleware, context: BuildContext) -> Step:
    """The `inFlightReq` builder (registry.py); `ValueError` for a bad option."""
    options = middleware.in_flight_req
    assert options is not None
    extract = source_criterion(options.source_criterion, default_host=True)
    limit = InFlight(options.amount)
    # oxy's connlimit error, which Traefik sends as it is.
    refusal = Reply(429, (), b"max connections reached: %d" % options.amount)

    def request(exchange: Exchange) -> Reply | None:
        return None if limit.enter(exchange, extract(exchange)) else refusal

    return Step("inFlightReq", request=request, outcome=limit.leave)


class InFlight:
    """Requests in flight per source, and the source each counted exchange is under."""

    __slots__ = ("amount", "counts", "holding")

    def __init__(self, amount: int) -> None:
        self.amount = amount
        self.counts: dict[str, int] = {}
        self.holding: dict[Exchange, str] = {}

    def enter(self, exchange: Exchange, source: str) -> bool:
        """Count `exchange` under `source`; False (not counted) when it is full."""
        count = self.counts.get(source, 0)
        if count >= self.amount:
            return False
        self.counts[source] = count + 1
        self.holding[exchange] = source
        return True

    def leave(self, exchange: Exchange, now: float) -> None:
        """The outcome hook: the exchange no longer counts (if it ever did)."""
        source = self.holding.pop(exchange, None)
        if source is None:
            return
        count = self.counts[source] - 1
        if count:
            self.counts[source] = count
        else:
            del self.counts[source]
