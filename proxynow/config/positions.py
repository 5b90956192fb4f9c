"""Where each key of a configuration file is: key path → (line, column), both 1-based.

YAML positions come from the node marks of `yaml.compose`. tomllib keeps no positions, so
TOML is scanned line by line for table headers and `key = value` lines (best effort:
inline tables and multi-line values are not followed into).

Positions are only read to report an error, and walking every node of a thousand-router
file cost the file provider a fifth of its reload, on every change. `LazyPositions` works
them out from the text on first use instead; a file that validates never pays for it.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping

import yaml

from proxynow.config.errors import Loc

__all__ = ["LazyPositions", "toml_positions", "yaml_node_positions", "yaml_positions"]

# libyaml when PyYAML has it (the pure-Python composer is several times slower).
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LazyPositions(Mapping[Loc, tuple[int, int]]):
    """The positions `compute()` returns, computed on first use."""

    __slots__ = ("_compute", "_positions")

    def __init__(self, compute: Callable[[], dict[Loc, tuple[int, int]]]) -> None:
        self._compute = compute
        self._positions: dict[Loc, tuple[int, int]] | None = None

    def _all(self) -> dict[Loc, tuple[int, int]]:
        if self._positions is None:
            self._positions = self._compute()
        return self._positions

    def __getitem__(self, loc: Loc) -> tuple[int, int]:
        return self._all()[loc]

    def __iter__(self) -> Iterator[Loc]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


def yaml_positions(text: str) -> dict[Loc, tuple[int, int]]:
    """Positions of every mapping key and sequence item of a YAML document."""
    return yaml_node_positions(yaml.compose(text, Loader=_LOADER))


def yaml_node_positions(root: yaml.Node | None) -> dict[Loc, tuple[int, int]]:
    """`yaml_positions` of an already composed document (None: an empty one)."""
    positions: dict[Loc, tuple[int, int]] = {}
    if root is not None:
        _walk_yaml(root, (), positions)
    return positions


def _walk_yaml(node: yaml.Node, loc: Loc, positions: dict[Loc, tuple[int, int]]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = str(key_node.value)
            mark = key_node.start_mark
            positions.setdefault((*loc, key), (mark.line + 1, mark.column + 1))
            _walk_yaml(value_node, (*loc, key), positions)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            mark = item.start_mark
            positions.setdefault((*loc, index), (mark.line + 1, mark.column + 1))
            _walk_yaml(item, (*loc, index), positions)


_KEY_PART = r'(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|\'[^\']*\')'
_DOTTED = rf"{_KEY_PART}(?:\s*\.\s*{_KEY_PART})*"
_TABLE = re.compile(rf"^\s*\[\s*({_DOTTED})\s*\]\s*(?:#.*)?$")
_ARRAY_TABLE = re.compile(rf"^\s*\[\[\s*({_DOTTED})\s*\]\]\s*(?:#.*)?$")
_ASSIGN = re.compile(rf"^(\s*)({_DOTTED})\s*=")
_SPLIT = re.compile(rf"\s*({_KEY_PART})\s*(?:\.|$)")


def _split_keys(dotted: str) -> list[str]:
    return [part.strip("\"'") for part in _SPLIT.findall(dotted)]


def toml_positions(text: str) -> dict[Loc, tuple[int, int]]:
    """Best-effort positions of the tables and keys of a TOML document."""
    positions: dict[Loc, tuple[int, int]] = {}
    counters: dict[Loc, int] = defaultdict(int)
    prefix: Loc = ()
    for number, line in enumerate(text.splitlines(), start=1):
        column = len(line) - len(line.lstrip()) + 1
        if match := _ARRAY_TABLE.match(line):
            table: Loc = tuple(_split_keys(match[1]))
            prefix = (*table, counters[table])
            counters[table] += 1
            positions.setdefault(table, (number, column))
            positions.setdefault(prefix, (number, column))
        elif match := _TABLE.match(line):
            prefix = tuple(_split_keys(match[1]))
            # `[http.middlewares.m.stripPrefix]` is where `http.middlewares.m` is, too.
            for end in range(1, len(prefix) + 1):
                positions.setdefault(prefix[:end], (number, column))
        elif match := _ASSIGN.match(line):
            keys = _split_keys(match[2])
            for end in range(1, len(keys) + 1):
                positions.setdefault((*prefix, *keys[:end]), (number, column))
    return positions
