"""`strategy: p2c` and `strategy: leasttime`: balancers that read the servers' live load.

Both follow Traefik v3.7 (pkg/server/service/loadbalancer/p2c and .../leasttime):

- `P2C` draws two distinct live servers at random (the second draw is over n-1 and skips
  the first) and sends to the one with fewer requests in flight; on a tie, the first
  drawn. Weights play no part: a server of weight 0 is drawn like any other (Traefik's
  p2c `AddServer` never reads the weight).
- `LeastTime` scores each live server `mean TTFB x (1 + in flight) / weight` and sends to
  the lowest. The mean is over the last 100 times to first byte, in whole milliseconds
  (Go's `Duration.Milliseconds` truncates); a server without a sample yet scores 0. Equal
  scores are broken earliest-deadline-first: the first candidate with the smallest
  deadline wins and its deadline moves on by 1/weight; deadlines start staggered, the
  n-th server at the sum of the first n steps.

The per-server state is a `Load`, owned by the balancer (so it outlives graph swaps with
it, per worker, never shared, no locks) and carried by the `Server` objects the balancer
hands out (`Server.load`; None for every other strategy). The HTTP protocol counts a
request in flight from the pick to the end of its exchange and reports the first byte of
the response (edge/proxy/dispatch.py `route`, `complete`, `finish`, `abandon`;
edge/http1/protocol.py `upstream_head`): that is the whole per-request cost, and only for
these servers.

Health, stickiness and `weighted` nesting work as for wrr: these balancers are `Balancer`s
(edge/balance/wrr.py) whose base keeps the live set (`set_down`, `has`, `only`); they only
replace how `pick` chooses among it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

from proxynow.edge.balance.wrr import Balancer

__all__ = ["P2C", "SAMPLES", "LeastTime", "Load", "Tracked"]

T = TypeVar("T")

SAMPLES = 100  # times to first byte kept per server (Traefik's sampleSize)


class Load:
    """One server's requests in flight and recent times to first byte (per worker)."""

    __slots__ = ("count", "cursor", "deadline", "inflight", "mean", "samples", "total", "weight")

    def __init__(self, weight: float) -> None:
        self.weight = weight
        self.inflight = 0
        self.samples = [0.0] * SAMPLES  # a ring: `cursor` is the oldest once it is full
        self.cursor = 0
        self.count = 0
        self.total = 0.0
        self.mean = 0.0  # 0 until the first sample: a new server is tried first
        self.deadline = 0.0  # leasttime's tie-break

    def first_byte(self, seconds: float) -> None:
        """Record a time to first byte; kept in whole milliseconds, as Traefik does."""
        ms = float(int(seconds * 1000.0))
        samples, cursor = self.samples, self.cursor
        if self.count < SAMPLES:
            self.count += 1
        else:
            self.total -= samples[cursor]
        samples[cursor] = ms
        self.total += ms  # integers in a double: the running sum stays exact
        self.cursor = (cursor + 1) % SAMPLES
        self.mean = self.total / self.count


class Tracked(Balancer[T]):
    """A balancer whose children carry a `Load`: the live ones, in configuration order."""

    __slots__ = ("_up", "loads")

    def __init__(self, children: Sequence[tuple[T, float]], keys: Sequence[str] = ()) -> None:
        super().__init__(children, keys)
        # One per child (by constructor index), weight <= 0 included though never picked.
        self.loads = [Load(weight) for _, weight in children]
        self._up: list[tuple[T, Load]] = []
        self._refresh()

    def rebind(self, items: Sequence[T]) -> None:
        super().rebind(items)
        self._refresh()

    def set_down(self, down: frozenset[str]) -> None:
        super().set_down(down)
        self._refresh()

    def in_flight(self) -> list[int]:
        """Requests in flight per child, in constructor order (for status and tests)."""
        return [load.inflight for load in self.loads]

    def _refresh(self) -> None:
        # The base's heap holds exactly the live children; its order is the heap's, so
        # sort back to the configuration's order (Traefik walks its handler list).
        live = sorted(self._heap, key=lambda entry: entry.index)
        self._up = [(entry.item, self.loads[entry.index]) for entry in live]


class P2C(Tracked[T]):
    """Power of two random choices over the live children."""

    __slots__ = ("_rng",)

    def __init__(
        self,
        children: Sequence[tuple[T, float]],
        keys: Sequence[str] = (),
        rng: random.Random | None = None,
    ) -> None:
        # Weight 1 for all: the base then keeps weight-0 servers in the live set too.
        super().__init__([(item, 1.0) for item, _ in children], keys)
        self._rng = rng if rng is not None else random.Random()

    def pick(self) -> T | None:
        if self.only is not None:
            return self.only
        up = self._up
        n = len(up)
        if n == 0:
            return None
        first = self._rng.randrange(n)
        second = self._rng.randrange(n - 1)
        if second >= first:
            second += 1  # two distinct children, each pair equally likely
        a, b = up[first], up[second]
        return b[0] if b[1].inflight < a[1].inflight else a[0]


class LeastTime(Tracked[T]):
    """The live child with the lowest mean TTFB x (1 + in flight) / weight."""

    __slots__ = ()

    def __init__(self, children: Sequence[tuple[T, float]], keys: Sequence[str] = ()) -> None:
        super().__init__(children, keys)
        deadline = 0.0
        for load in self.loads:
            if load.weight > 0:
                deadline += 1.0 / load.weight
                load.deadline = deadline

    def pick(self) -> T | None:
        if self.only is not None:
            return self.only
        best = float("inf")
        chosen: tuple[T, Load] | None = None
        tied: list[tuple[T, Load]] | None = None
        for child in self._up:
            load = child[1]
            score = load.mean * (1 + load.inflight) / load.weight
            if score < best:
                best, chosen, tied = score, child, None
            elif score == best:
                if tied is None:
                    assert chosen is not None
                    tied = [chosen]
                tied.append(child)
        if tied is not None:
            chosen = _earliest(tied)
        return chosen[0] if chosen is not None else None


def _earliest(tied: list[tuple[T, Load]]) -> tuple[T, Load]:
    """Traefik's tie-break: the first child with the smallest deadline, moved on by 1/weight."""
    chosen = tied[0]
    for child in tied[1:]:
        if child[1].deadline < chosen[1].deadline:
            chosen = child
    load = chosen[1]
    load.deadline += 1.0 / load.weight
    return chosen
