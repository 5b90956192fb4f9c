"""Smooth weighted round robin, scheduled earliest-deadline-first as Traefik does it.

Traefik's `wrr` balancer (pkg/server/service/loadbalancer/wrr) keeps its children in a
binary heap ordered by deadline: each pick pops the earliest, moves the balancer's current
deadline there, pushes the child back with its deadline advanced by 1/weight; a child added
later starts at current deadline + 1/weight. Ties are resolved by the heap's layout, so to
give the same order for equal weights we sift exactly as Go's `container/heap` does
(`Pop` swaps root and last then sifts down over n-1; `Push` sifts up), not as `heapq` does.

A `Balancer` is per-worker mutable state (the cursor). The graph holds a reference, but the
object is owned by `BalancerRegistry`, keyed by service name and the children's identity,
so an unchanged service keeps its position across graph swaps. Children are opaque (a
server, or another service for `weighted` services, which nest by picking recursively).

Health (edge/upstream/health.py) takes children out and puts them back with `set_down`, by the
children's `keys` (server URLs, child service names), as Traefik's balancer does: a down
child leaves the heap, a child coming back re-enters at the current deadline + 1/weight.
`pick` itself never looks at health, so a balancer without health costs what it did.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Generic, TypeVar

from mypy_extensions import mypyc_attr

__all__ = ["Balancer", "BalancerRegistry", "Factory", "InOrder", "nested"]

T = TypeVar("T")


class _Entry(Generic[T]):
    __slots__ = ("deadline", "index", "item", "step")

    def __init__(self, index: int, item: T, weight: float, deadline: float) -> None:
        self.index = index
        self.item = item
        self.step = 1.0 / weight
        self.deadline = deadline


@mypyc_attr(allow_interpreted_subclasses=True)  # least.Tracked subclasses it
class Balancer(Generic[T]):
    """EDF weighted round robin over `(item, weight)` children; weights <= 0 are ignored."""

    __slots__ = ("_entries", "_heap", "_live", "_now", "down", "keys", "only")

    def __init__(self, children: Sequence[tuple[T, float]], keys: Sequence[str] = ()) -> None:
        self._heap: list[_Entry[T]] = []
        self._now = 0.0
        for index, (item, weight) in enumerate(children):
            if weight > 0:
                self._push(_Entry(index, item, weight, self._now + 1.0 / weight))
        self._entries = list(self._heap)  # every child that can serve, live or down
        self._live = frozenset(entry.index for entry in self._heap)  # for `has`
        # The children's names for health (by child index); empty: health does not apply.
        self.keys = tuple(keys)
        self.down: frozenset[str] = frozenset()
        # One child: no scheduling at all on the hot path.
        self.only: T | None = self._heap[0].item if len(self._heap) == 1 else None

    def __len__(self) -> int:
        return len(self._heap)

    def rebind(self, items: Sequence[T]) -> None:
        """Point the entries at a new graph's objects for the same children (same order)."""
        for entry in self._entries:
            entry.item = items[entry.index]
        self.only = self._heap[0].item if len(self._heap) == 1 else None

    def set_down(self, down: frozenset[str]) -> None:
        """Serve only the children whose key is not in `down` (Traefik's SetStatus): the
        ones going down leave the heap, the ones coming back re-enter at now + 1/weight."""
        if down == self.down or not self.keys:
            return
        keys = self.keys
        was, self.down = self.down, down
        heap = [entry for entry in self._heap if keys[entry.index] not in down]
        back = [e for e in self._entries if keys[e.index] in was and keys[e.index] not in down]
        self._heap = heap
        for i in range(len(heap) // 2 - 1, -1, -1):  # Go's heap.Init
            self._sift(i, len(heap))
        for entry in back:
            entry.deadline = self._now + entry.step
            self._push(entry)
        self._live = frozenset(entry.index for entry in self._heap)
        self.only = self._heap[0].item if len(self._heap) == 1 else None

    def has(self, index: int) -> bool:
        """Whether child `index` (its position in the constructor's sequence) is in the
        live set: sticky sessions (edge/balance/sticky.py::live) ask before reusing a child."""
        return index in self._live

    def pick(self) -> T | None:
        """The next child, or None when there is none."""
        if self.only is not None:
            return self.only
        heap = self._heap
        n = len(heap) - 1
        if n < 0:
            return None
        entry = heap[0]
        heap[0] = heap[n]
        heap[n] = entry
        self._down(n)
        heap.pop()
        self._now = entry.deadline
        entry.deadline += entry.step
        self._push(entry)
        return entry.item

    def _push(self, entry: _Entry[T]) -> None:
        heap = self._heap
        heap.append(entry)
        j = len(heap) - 1
        while j > 0:
            i = (j - 1) // 2
            if not heap[j].deadline < heap[i].deadline:
                break
            heap[i], heap[j] = heap[j], heap[i]
            j = i

    def _down(self, n: int) -> None:
        self._sift(0, n)

    def _sift(self, i: int, n: int) -> None:
        heap = self._heap
        while True:
            j = 2 * i + 1
            if j >= n:
                return
            if j + 1 < n and heap[j + 1].deadline < heap[j].deadline:
                j += 1
            if not heap[j].deadline < heap[i].deadline:
                return
            heap[i], heap[j] = heap[j], heap[i]
            i = j


class InOrder(Balancer[T]):
    """`Balancer` whose ties go to the child given first, so equal weights rotate in the
    given order: Traefik's TCP servers (pkg/tcp/wrr_load_balancer.go) take turns in the
    order they are listed, where its HTTP balancer follows Go's heap layout."""

    __slots__ = ()

    def _push(self, entry: _Entry[T]) -> None:
        heap = self._heap
        heap.append(entry)
        j = len(heap) - 1
        while j > 0:
            i = (j - 1) // 2
            if not _before(heap[j], heap[i]):
                break
            heap[i], heap[j] = heap[j], heap[i]
            j = i

    def _sift(self, i: int, n: int) -> None:
        heap = self._heap
        while True:
            j = 2 * i + 1
            if j >= n:
                return
            if j + 1 < n and _before(heap[j + 1], heap[j]):
                j += 1
            if not _before(heap[j], heap[i]):
                return
            heap[i], heap[j] = heap[j], heap[i]
            i = j


def _before(a: _Entry[T], b: _Entry[T]) -> bool:
    return (a.deadline, a.index) < (b.deadline, b.index)


def nested(balancer: Balancer[Callable[[], T | None]]) -> Callable[[], T | None]:
    """A pick over a balancer of picks (a weighted service of services): the chosen
    child picks in turn; None when there is no child or the child has nothing."""

    def pick() -> T | None:
        child = balancer.pick()
        return child() if child is not None else None

    return pick


# Builds a balancer from `(children, keys)`: `Balancer` itself (wrr), or a class of
# edge/balance/least.py (p2c, leasttime).
Factory = Callable[[Sequence[tuple[T, float]], Sequence[str]], Balancer[T]]


class BalancerRegistry:
    """The worker's balancers, reused for a service whose children did not change."""

    __slots__ = ("_current",)

    def __init__(self) -> None:
        self._current: dict[str, tuple[Hashable, Balancer[object]]] = {}

    def get(
        self,
        service: str,
        identity: Hashable,
        children: Sequence[tuple[T, float]],
        keys: Sequence[str] = (),
        factory: Factory[T] = Balancer,
    ) -> Balancer[T]:
        """The balancer of `service`; a new one (made by `factory`) if `identity` (its
        children's key, and its strategy) changed. `keys` name the children for health
        (`Balancer.set_down`)."""
        known = self._current.get(service)
        if known is not None and known[0] == identity:
            # Same identity means the same children in the same order, so items map 1:1.
            balancer: Balancer[T] = known[1]  # type: ignore[assignment]
            balancer.rebind([item for item, _ in children])
            return balancer
        balancer = factory(children, keys)
        self._current[service] = (identity, balancer)  # type: ignore[assignment]
        return balancer

    def find(self, service: str) -> Balancer[object] | None:
        """The current balancer of `service`, if it has one."""
        known = self._current.get(service)
        return known[1] if known is not None else None

    def retain(self, services: set[str]) -> None:
        """Forget the balancers of services that left the configuration."""
        for name in [n for n in self._current if n not in services]:
            del self._current[name]
