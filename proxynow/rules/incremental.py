"""A route table kept between builds, so that changing one route costs one route.

`compile_table` sorts and indexes every route on every call: for a worker serving a thousand
routers, a configuration change that adds one router used to cost a full compile (about
12 ms, during which no request is served). `TableBuilder` keeps the pieces of the last table
(each route's sort position, its index keys and its entries in the host cells) and, given the
next list of routes, only removes the routes that left or changed and places the new ones.

Entries carry a global `order` that the lookup compares across host cells; a full compile
numbers them 0, 1, 2, ... To insert a route between two others without renumbering every
route, orders here are spaced `_GAP` apart and a new route takes the midpoint of its
neighbours. When there is no integer left between them (routes keep arriving at the same
place, e.g. names that sort after each other), the routes around the insertion point are
spread out again over a window that doubles until it has room: the classic answer to
list order maintenance, which costs the window, not the table. Only cells a change touched
are frozen again; the others are shared with the previous table, which is never mutated
(a request may still be using it).

Routes are told apart by name (names are unique in a table) and compared by identity: the
caller reuses the same `Route` object for a router that did not change.

Every step of a build can also be taken a slice at a time: `build_steps` and `patch_steps`
are generators that yield after each route placed, each cell frozen and each few hundred
hosts decided, and return the table. A worker drives them from its event loop and lets
requests run between slices (edge/graph/state.py), so that placing 20,000 new routes never holds
the loop for long; `build` and `patch` run them to the end in one go (`finish`). The last
table stays untouched until the end: requests keep using it meanwhile.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from proxynow.rules.compiler import (
    Route,
    RouteTable,
    _analyse,
    _Cell,
    _CellBuilder,
    _Entry,
    _host_decided,
    _Keys,
    _residual_predicate,
)
from proxynow.rules.parser import RuleKind, parse_rule

__all__ = ["Steps", "TableBuilder", "finish"]

T = TypeVar("T")
R = TypeVar("R")

Steps = Generator[None, None, R]
"""A computation taken a slice at a time: it yields between slices, returns its result."""

_GAP = 1 << 20
_MIN_STEP = 1 << 10  # respaced routes get at least this much room around them
# Above this share of changed routes, a full compile is cheaper than patching.
_PATCH_LIMIT = 0.5
_ANY = ("any", "")
_HOSTS_PER_STEP = 512  # hosts whose `by_host` entry is worked out between two yields
_KEYS_PER_STEP = 1024  # sort keys computed between two yields
_RENUMBERED_PER_STEP = 256  # routes renumbered between two yields


def finish(steps: Steps[R]) -> R:
    """Run `steps` to the end in one go; its result."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


CellId = tuple[str, str]  # ("exact" | "wildcard" | "any", host key)


@dataclass(slots=True)
class _Placed(Generic[T]):
    route: Route[T]
    sort_key: tuple[int, int, str]
    keys: _Keys
    entry: _Entry[T]
    cells: tuple[CellId, ...]


class _MutableCell(_CellBuilder[T]):
    """A host cell whose entry lists stay ordered by `order` and lose entries again."""

    def insert(self, entry: _Entry[T], keys: _Keys) -> None:
        for path in keys.exact_paths:
            _insort(self.exact.setdefault(path, []), entry)
        for prefix in keys.prefixes:
            _insort(self.prefixes.setdefault(prefix, []), entry)
        if not keys.exact_paths and not keys.prefixes:
            _insort(self.rest, entry)

    def remove(self, entry: _Entry[T], keys: _Keys) -> None:
        for path in keys.exact_paths:
            _drop(self.exact, path, entry)
        for prefix in keys.prefixes:
            _drop(self.prefixes, prefix, entry)
        if not keys.exact_paths and not keys.prefixes:
            _discard(self.rest, entry)

    def empty(self) -> bool:
        return not (self.exact or self.prefixes or self.rest)


def _insort(entries: list[_Entry[T]], entry: _Entry[T]) -> None:
    bisect.insort(entries, entry, key=_order)


def _order(entry: _Entry[T]) -> int:
    return entry.order


def _discard(entries: list[_Entry[T]], entry: _Entry[T]) -> None:
    for index, item in enumerate(entries):
        if item is entry:
            del entries[index]
            return


def _drop(table: dict[str, list[_Entry[T]]], key: str, entry: _Entry[T]) -> None:
    entries = table.get(key)
    if entries is not None:
        _discard(entries, entry)
        if not entries:
            del table[key]


class TableBuilder(Generic[T]):
    """Builds successive `RouteTable`s for one entrypoint, reusing what did not change."""

    def __init__(self, kind: RuleKind = "http") -> None:
        self._kind: RuleKind = kind
        self._table: RouteTable[T] | None = None
        self._reset()

    def _reset(self) -> None:
        self._placed: dict[str, _Placed[T]] = {}
        self._sort_keys: list[tuple[int, int, str]] = []
        self._orders: list[int] = []
        self._names: list[str] = []
        self._cells: dict[CellId, _MutableCell[T]] = {}
        # Frozen cells by kind of host key: the next table copies these dicts (a C-level copy).
        self._frozen: dict[str, dict[str, _Cell[T]]] = {"exact": {}, "wildcard": {}, "any": {}}
        self._dirty: set[CellId] = set()
        # The last table's `by_host` (None: work it out for every host next time).
        self._by_host: dict[str, T | None] | None = None
        self._tombstones = _Tombstones()

    def build(self, routes: list[Route[T]]) -> RouteTable[T]:
        """The table of `routes` (unique names), patched from the previous one."""
        return finish(self.build_steps(routes))

    def build_steps(self, routes: list[Route[T]]) -> Steps[RouteTable[T]]:
        """`build`, a slice at a time."""
        incoming = {route.name: route for route in routes}
        placed = self._placed
        changed = [
            r for n, r in incoming.items() if (p := placed.get(n)) is None or p.route is not r
        ]
        gone = [
            name
            for name in placed
            if name not in incoming or incoming[name] is not placed[name].route
        ]
        if self._table is not None and not changed and not gone:
            return self._table
        if self._table is None or len(changed) + len(gone) > _PATCH_LIMIT * len(incoming):
            return (yield from self._rebuild(routes))
        for name in gone:
            self._unplace(name)
            yield
        for route in changed:
            yield from self._place(route)
            yield
        return (yield from self._freeze())

    def patch(self, added: list[Route[T]], removed: list[str]) -> RouteTable[T]:
        """The last table with the routes named in `removed` taken out and `added` put in
        (a route in `added` replaces the one of its name). Costs the change, not the table."""
        return finish(self.patch_steps(added, removed))

    def patch_steps(self, added: list[Route[T]], removed: list[str]) -> Steps[RouteTable[T]]:
        """`patch`, a slice at a time."""
        if self._table is not None and not added and not removed:
            return self._table
        if self._table is None or len(added) + len(removed) > _PATCH_LIMIT * len(self._placed):
            # Most of the table changes (20,000 routes into one): placing them one by one
            # would insert them all at the same place, and respacing a growing window
            # there took 44 ms for one route; sorted into a fresh table they just append.
            gone = set(removed)
            routes = {n: p.route for n, p in self._placed.items() if n not in gone}
            routes.update((route.name, route) for route in added)
            return (yield from self._rebuild(list(routes.values())))
        for name in removed:
            if name in self._placed:
                self._unplace(name)
                yield
        for route in added:
            if route.name in self._placed:
                self._unplace(route.name)
            yield from self._place(route)
            yield
        return (yield from self._freeze())

    def _rebuild(self, routes: list[Route[T]]) -> Steps[RouteTable[T]]:
        self._reset()
        # Sorted a chunk per step and merged as they are placed: sorting 20,000 routes in
        # one call held a worker's loop for 44 ms.
        chunks: list[list[tuple[tuple[int, int, str], int]]] = []
        for start in range(0, len(routes), _KEYS_PER_STEP):
            end = min(start + _KEYS_PER_STEP, len(routes))
            chunk = [(_sort_key(routes[index]), index) for index in range(start, end)]
            chunk.sort()  # names are unique: the index never decides
            chunks.append(chunk)
            yield
        for _, index in heapq.merge(*chunks):
            yield from self._place(routes[index])
            yield
        return (yield from self._freeze())

    def _place(self, route: Route[T]) -> Steps[None]:
        """Insert `route` at its sort position (steps: making room may renumber many)."""
        sort_key = _sort_key(route)
        index = bisect.bisect(self._sort_keys, sort_key)
        order = self._free_order(index)
        if order is None:
            order = yield from self._respace(index)
        node = parse_rule(route.rule, self._kind) if isinstance(route.rule, str) else route.rule
        keys = _analyse(node, self._kind)
        entry = _Entry(order, _residual_predicate(keys.residual), route.target)
        cells = _cell_ids(keys)
        for cell_id in cells:
            cell = self._cells.get(cell_id)
            if cell is None:
                cell = self._cells[cell_id] = _MutableCell()
            cell.insert(entry, keys)
            self._dirty.add(cell_id)
        self._sort_keys.insert(index, sort_key)
        self._orders.insert(index, order)
        self._names.insert(index, route.name)
        self._placed[route.name] = _Placed(route, sort_key, keys, entry, cells)

    def _respace(self, index: int) -> Steps[int]:
        """Spread the orders around `index` so that a route fits there; its order. The
        window doubles until it has room: thousands of routes inserted at one place make
        it thousands wide (0.1 s to renumber 5,000), so it yields every 256 routes."""
        orders, count = self._orders, len(self._orders)
        width = 2
        while True:
            start, end = max(0, index - width), min(count, index + width)
            # Exclusive bounds; past either end of the table the orders are free.
            low = orders[start - 1] if start > 0 else orders[0] - (width + 1) * _GAP
            high = orders[end] if end < count else orders[-1] + (width + 1) * _GAP
            slots = end - start + 1  # the routes of the window and the one coming in
            step = (high - low) // (slots + 1)
            if step >= _MIN_STEP:
                break
            width *= 2
        new_order = 0
        for position in range(slots):
            order = low + step * (position + 1)
            if start + position == index:
                new_order = order
            else:
                moved = start + position - (start + position > index)
                self._renumber(moved, order)
            if position % _RENUMBERED_PER_STEP == _RENUMBERED_PER_STEP - 1:
                yield
        return new_order

    def _renumber(self, index: int, order: int) -> None:
        self._orders[index] = order
        placed = self._placed[self._names[index]]
        old = placed.entry
        placed.entry = _Entry(order, old.residual, old.target)
        for cell_id in placed.cells:
            cell = self._cells[cell_id]
            cell.remove(old, placed.keys)
            cell.insert(placed.entry, placed.keys)
            self._dirty.add(cell_id)

    def _free_order(self, index: int) -> int | None:
        orders = self._orders
        if not orders:
            return 0
        if index == len(orders):
            return orders[-1] + _GAP
        if index == 0:
            return orders[0] - _GAP
        low, high = orders[index - 1], orders[index]
        middle = (low + high) // 2
        return middle if low < middle < high else None

    def _unplace(self, name: str) -> None:
        placed = self._placed.pop(name)
        index = bisect.bisect_left(self._sort_keys, placed.sort_key)
        del self._sort_keys[index], self._orders[index], self._names[index]
        for cell_id in placed.cells:
            cell = self._cells[cell_id]
            cell.remove(placed.entry, placed.keys)
            self._dirty.add(cell_id)

    def _freeze(self) -> Steps[RouteTable[T]]:
        """Freeze the cells a change touched and assemble the next table.

        `by_host` (the hosts that alone decide their route) depends on a host's own cell,
        the wildcard cell of its parent domain and the host-less cell: when only exact-host
        cells changed, only their hosts are decided again; otherwise every host is.

        The next table gets copies of the host dicts (the last table is never mutated). A
        host that leaves stays in them as a tombstone (an empty cell, a `None` in
        `by_host`), not deleted: a dict without deleted slots is copied as one block
        (CPython clones its keys), one with holes entry by entry, 3-4x slower; with a
        thousand hosts the copies were most of a one-router change (see `_Tombstones`).
        """
        dirty, self._dirty = self._dirty, set()
        only_exact = self._by_host is not None and all(where == "exact" for where, _ in dirty)
        hosts: list[str] = []
        for count, cell_id in enumerate(dirty, 1):
            where, host = cell_id
            cell = self._cells.get(cell_id)
            if cell is None or (cell.empty() and cell_id != _ANY):
                self._cells.pop(cell_id, None)
                if host in self._frozen[where]:
                    self._frozen[where][host] = _EMPTY_CELL
                    self._tombstones.add(where)
            else:
                self._frozen[where][host] = cell.freeze()
            if where == "exact":
                hosts.append(host)
            if count % 64 == 0:
                yield
        self._tombstones.compact(self._frozen)
        any_host = self._frozen["any"].get("") or _EMPTY_CELL
        exact, wildcards = dict(self._frozen["exact"]), dict(self._frozen["wildcard"])
        if only_exact and self._by_host is not None:
            by_host = dict(self._by_host)
            for host in hosts:
                if host in by_host:
                    by_host[host] = None  # decided again below, if it still is
                    self._tombstones.add("by_host")
        else:
            by_host, hosts = {}, list(exact)
            self._tombstones.reset("by_host")
        for start in range(0, len(hosts), _HOSTS_PER_STEP):
            cells = {h: exact[h] for h in hosts[start : start + _HOSTS_PER_STEP] if h in exact}
            decided = _host_decided(cells, wildcards, any_host)
            by_host.update(decided)
            yield
        by_host = self._tombstones.compacted(by_host)
        self._by_host = by_host
        names = tuple(self._names)
        self._table = RouteTable(self._kind, exact, wildcards, any_host, names, by_host)
        return self._table


_EMPTY_CELL: _Cell[Any] = _CellBuilder[Any]().freeze()


class _Tombstones:
    """Counts the tombstones of a builder's host dicts and sweeps a dict when they are
    more than a quarter of it (plus a margin): the copies stay block copies, and churn
    through ever new hosts cannot grow the dicts without bound."""

    __slots__ = ("counts",)

    _MARGIN = 64

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def add(self, where: str) -> None:
        self.counts[where] = self.counts.get(where, 0) + 1

    def reset(self, where: str) -> None:
        self.counts.pop(where, None)

    def _due(self, where: str, size: int) -> bool:
        count = self.counts.get(where, 0)
        return count > self._MARGIN and count * 4 > size

    def compact(self, frozen: dict[str, dict[str, _Cell[T]]]) -> None:
        for where, cells in frozen.items():
            if self._due(where, len(cells)):
                frozen[where] = {h: c for h, c in cells.items() if c is not _EMPTY_CELL}
                self.reset(where)

    def compacted(self, by_host: dict[str, T | None]) -> dict[str, T | None]:
        if not self._due("by_host", len(by_host)):
            return by_host
        self.reset("by_host")
        return {h: t for h, t in by_host.items() if t is not None}


def _sort_key(route: Route[Any]) -> tuple[int, int, str]:
    return (-route.effective_priority(), route.provider_rank, route.name)


def _cell_ids(keys: _Keys) -> tuple[CellId, ...]:
    if keys.hosts is None:
        return (_ANY,)
    ids: list[CellId] = []
    for host in dict.fromkeys(keys.hosts):
        ids.append(("wildcard", host[1:]) if host.startswith("*.") else ("exact", host))
    return tuple(ids)
