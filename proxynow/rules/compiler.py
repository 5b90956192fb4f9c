"""Rule trees compiled to predicates, and route sets compiled to a decision structure.

``compile_table`` sorts routes by priority (explicit non-zero ``priority``, else the rule
length; higher first), then by ``provider_rank`` (lower first: the provider's position in
``providers.precedence``), then by name. That order defines the answer: the first route
whose rule matches. The table finds it without scanning every route:

    host index: exact host → cell, wildcard suffix ("*.x.com" → ".x.com") → cell, any → cell
    cell:       exact path → entries, path prefix (by length) → entries, any path → entries

A route lands in the cells of the hosts and paths its rule *requires* (the Host/Path/
PathPrefix terms of its top-level AND, or an OR made only of such terms); everything else
stays in its residual predicate. A request looks at most 3 host cells and 3 kinds of path
candidates, each an ordered tuple, and takes the matching entry with the smallest global
order, which is exactly "first match in priority order over all routes".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from proxynow.rules.ast import And, Matcher, Node, Not, Or, format_rule
from proxynow.rules.matchers import Predicate, compile_matcher, host_key, sni_key
from proxynow.rules.parser import RuleKind, parse_rule

T = TypeVar("T")

_HOST_MATCHER = {"http": "Host", "tcp": "HostSNI"}


def compile_predicate(node: Node) -> Predicate:
    """The predicate of a whole rule tree (closures, built once)."""
    if isinstance(node, Matcher):
        return compile_matcher(node)
    if isinstance(node, Not):
        inner = compile_predicate(node.operand)
        return lambda r: not inner(r)
    left, right = compile_predicate(node.left), compile_predicate(node.right)
    if isinstance(node, And):
        return lambda r: left(r) and right(r)
    return lambda r: left(r) or right(r)


# Traefik 3.7's default `providers.precedence`: on equal priority, the earlier provider wins.
PROVIDER_PRECEDENCE = (
    "kubernetesgateway",
    "kubernetescrd",
    "kubernetes",
    "kubernetesingressnginx",
    "swarm",
    "docker",
    "file",
    "redis",
    "knative",
    "consul",
    "consulcatalog",
    "nomad",
    "etcd",
    "ecs",
    "http",
    "zookeeper",
    "rest",
)
_RANK = {name: rank for rank, name in enumerate(PROVIDER_PRECEDENCE)}


def provider_rank(qualified_name: str) -> int:
    """The tie-break rank of `name@provider` (providers not in the list come last)."""
    provider = qualified_name.rpartition("@")[2]
    return _RANK.get(provider, len(PROVIDER_PRECEDENCE))


@dataclass(frozen=True, slots=True)
class Route(Generic[T]):
    """One router as the table sees it. ``rule`` is text or an already parsed tree;
    with a tree, ``source`` is the rule's text, whose length is the default priority."""

    name: str
    rule: str | Node
    target: T
    priority: int = 0
    provider_rank: int = 0
    source: str = ""

    def effective_priority(self) -> int:
        if self.priority:
            return self.priority
        if isinstance(self.rule, str):
            return len(self.rule)
        # Traefik counts the text as written (spaces, quotes): the canonical form is a fallback.
        return len(self.source or format_rule(self.rule))


@dataclass(frozen=True, slots=True)
class _Entry(Generic[T]):
    order: int
    # None when the index already proves the whole rule (e.g. a bare Host(`a`) rule).
    residual: Predicate | None
    target: T


_NO_ORDER = 1 << 62  # after every route


@dataclass(frozen=True, slots=True)
class _Keys:
    """What a rule requires: host keys, path keys, and the terms left to check."""

    hosts: tuple[str, ...] | None
    exact_paths: tuple[str, ...]
    prefixes: tuple[str, ...]
    residual: tuple[Node, ...]


def _conjuncts(node: Node) -> list[Node]:
    if isinstance(node, And):
        return _conjuncts(node.left) + _conjuncts(node.right)
    return [node]


def _disjuncts(node: Node) -> list[Node]:
    if isinstance(node, Or):
        return _disjuncts(node.left) + _disjuncts(node.right)
    return [node]


def _only(node: Node, names: set[str]) -> list[Matcher] | None:
    """The matchers of an OR-of-matchers term when all are named in ``names``."""
    terms = _disjuncts(node)
    if all(isinstance(t, Matcher) and t.name in names for t in terms):
        return [t for t in terms if isinstance(t, Matcher)]
    return None


def _host_value(matcher: Matcher, kind: RuleKind) -> str:
    if kind == "tcp":
        return sni_key(matcher.args[0]) or ""
    return host_key(matcher.args[0])


def _analyse(node: Node, kind: RuleKind) -> _Keys:
    host_name = _HOST_MATCHER[kind]
    hosts: tuple[str, ...] | None = None
    exact: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    residual: list[Node] = []
    for term in _conjuncts(node):
        host_terms = _only(term, {host_name})
        if host_terms is not None:
            values = tuple(_host_value(m, kind) for m in host_terms)
            if "*" in values:
                continue  # Host(`*`) is true for every request, even without a host.
            if hosts is None:
                hosts = values
                continue
        path_terms = _only(term, {"Path", "PathPrefix"}) if kind == "http" else None
        if path_terms is not None and not exact and not prefixes:
            exact = tuple(m.args[0] for m in path_terms if m.name == "Path")
            prefixes = tuple(m.args[0] for m in path_terms if m.name == "PathPrefix")
            continue
        residual.append(term)
    return _Keys(hosts, exact, prefixes, tuple(residual))


def _residual_predicate(terms: Sequence[Node]) -> Predicate | None:
    if not terms:
        return None
    node = terms[0]
    for term in terms[1:]:
        node = And(node, term)
    return compile_predicate(node)


class _CellBuilder(Generic[T]):
    """Mutable collector for one host cell; frozen into a ``_Cell`` at the end."""

    def __init__(self) -> None:
        self.exact: dict[str, list[_Entry[T]]] = {}
        self.prefixes: dict[str, list[_Entry[T]]] = {}
        self.rest: list[_Entry[T]] = []

    def add(self, entry: _Entry[T], keys: _Keys) -> None:
        for path in keys.exact_paths:
            self.exact.setdefault(path, []).append(entry)
        for prefix in keys.prefixes:
            self.prefixes.setdefault(prefix, []).append(entry)
        if not keys.exact_paths and not keys.prefixes:
            self.rest.append(entry)

    def freeze(self) -> _Cell[T]:
        return _Cell(
            {k: tuple(v) for k, v in self.exact.items()},
            {k: tuple(v) for k, v in self.prefixes.items()},
            tuple(sorted({len(p) for p in self.prefixes})),
            tuple(self.rest),
        )


@dataclass(frozen=True, slots=True)
class _Cell(Generic[T]):
    exact: dict[str, tuple[_Entry[T], ...]]
    prefixes: dict[str, tuple[_Entry[T], ...]]
    prefix_lengths: tuple[int, ...]
    rest: tuple[_Entry[T], ...]

    def collect(self, path: str, out: list[tuple[_Entry[T], ...]]) -> None:
        if self.exact:
            found = self.exact.get(path)
            if found is not None:
                out.append(found)
        if self.prefix_lengths:
            prefixes, size = self.prefixes, len(path)
            for length in self.prefix_lengths:
                if length > size:
                    break
                found = prefixes.get(path[:length])
                if found is not None:
                    out.append(found)
        if self.rest:
            out.append(self.rest)


def _min_order(cell: _Cell[Any] | None) -> int:
    if cell is None:
        return _NO_ORDER
    firsts = [entries[0].order for entries in (*cell.exact.values(), *cell.prefixes.values())]
    if cell.rest:
        firsts.append(cell.rest[0].order)
    return min(firsts, default=_NO_ORDER)


def _host_decided(
    exact: dict[str, _Cell[T]], wildcards: dict[str, _Cell[T]], any_host: _Cell[T]
) -> dict[str, T | None]:
    """Exact hosts whose match never depends on the path or anything else: their cell
    is one entry with no residual, and no wildcard or host-less route ranks before it."""
    any_order = _min_order(any_host)
    decided: dict[str, T | None] = {}
    for host, cell in exact.items():
        if cell.exact or cell.prefixes or len(cell.rest) != 1:
            continue
        entry = cell.rest[0]
        if entry.residual is not None or entry.order > any_order:
            continue
        dot = host.find(".")
        if dot >= 0 and entry.order > _min_order(wildcards.get(host[dot:])):
            continue
        decided[host] = entry.target
    return decided


def _first(candidates: list[tuple[_Entry[T], ...]], request: Any) -> T | None:
    """The matching entry with the smallest order across ordered candidate tuples."""
    best: _Entry[T] | None = None
    best_order = 1 << 62
    for entries in candidates:
        for entry in entries:
            if entry.order >= best_order:
                break
            residual = entry.residual
            if residual is None or residual(request):
                best, best_order = entry, entry.order
                break
    return None if best is None else best.target


class RouteTable(Generic[T]):
    """Immutable compiled routes; ``match`` returns the target of the first matching route."""

    __slots__ = ("_any", "_exact", "_kind", "_names", "_wildcards", "by_host")

    def __init__(
        self,
        kind: RuleKind,
        exact: dict[str, _Cell[T]],
        wildcards: dict[str, _Cell[T]],
        any_host: _Cell[T],
        names: tuple[str, ...],
        by_host: dict[str, T | None] | None = None,
    ) -> None:
        self._kind = kind
        self._exact = exact
        self._wildcards = wildcards
        self._any = any_host
        self._names = names
        # Host → target where the host alone decides (one bare Host rule that nothing
        # else can outrank): one lookup instead of the cells (with 1,000 host routers in
        # rotation each request would touch another cell, entry and tuple). `by_host` is
        # passed in by a builder that keeps it up to date itself (rules/incremental.py),
        # where a host that is no longer decided may map to None (a tombstone).
        self.by_host: dict[str, T | None] = (
            by_host if by_host is not None else _host_decided(exact, wildcards, any_host)
        )

    @property
    def route_names(self) -> tuple[str, ...]:
        """Route names in evaluation (priority) order."""
        return self._names

    def match(self, request: Any) -> T | None:
        """First route in priority order whose rule matches ``request`` (a ``RequestView``
        for HTTP tables, a ``TCPView`` for TCP tables), or None."""
        if self._kind == "http":
            host, path = request.host, request.path
        else:
            host, path = request.sni, ""
        decided = self.by_host.get(host)
        if decided is not None:
            return decided
        candidates: list[tuple[_Entry[T], ...]] = []
        cell = self._exact.get(host)
        if cell is not None:
            cell.collect(path, candidates)
        if self._wildcards:
            dot = host.find(".")
            if dot >= 0:
                cell = self._wildcards.get(host[dot:])
                if cell is not None:
                    cell.collect(path, candidates)
        self._any.collect(path, candidates)
        if len(candidates) == 1:
            for entry in candidates[0]:
                if entry.residual is None or entry.residual(request):
                    return entry.target
            return None
        return _first(candidates, request)


def _sort_key(route: Route[Any]) -> tuple[int, int, str]:
    return (-route.effective_priority(), route.provider_rank, route.name)


def compile_table(routes: Iterable[Route[T]], kind: RuleKind = "http") -> RouteTable[T]:
    """Compile ``routes`` (rules as text are parsed here; ``RuleError`` if one is invalid)."""
    ordered = sorted(routes, key=_sort_key)
    exact: dict[str, _CellBuilder[T]] = {}
    wildcards: dict[str, _CellBuilder[T]] = {}
    any_host: _CellBuilder[T] = _CellBuilder()
    for order, route in enumerate(ordered):
        node = parse_rule(route.rule, kind) if isinstance(route.rule, str) else route.rule
        keys = _analyse(node, kind)
        entry = _Entry(order, _residual_predicate(keys.residual), route.target)
        if keys.hosts is None:
            any_host.add(entry, keys)
            continue
        for host in dict.fromkeys(keys.hosts):
            table = wildcards if host.startswith("*.") else exact
            table.setdefault(host[1:] if host.startswith("*.") else host, _CellBuilder()).add(
                entry, keys
            )
    return RouteTable(
        kind,
        {k: b.freeze() for k, b in exact.items()},
        {k: b.freeze() for k, b in wildcards.items()},
        any_host.freeze(),
        tuple(r.name for r in ordered),
    )
