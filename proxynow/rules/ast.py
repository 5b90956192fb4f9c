"""The rule AST: matchers combined by NOT, AND and OR, as frozen slotted dataclasses.

Nodes are values: equal rules give equal trees, trees can be hashed, pickled to workers and
shared between route tables. ``format_rule`` prints a tree back in canonical v3 syntax.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Matcher:
    """One matcher call, ``name`` in canonical spelling (``HostRegexp``, not ``hostregexp``)."""

    name: str
    args: tuple[str, ...]
    # Where the matcher name starts in the rule text (1-based); not part of equality so
    # that a tree parsed from differently spaced text compares equal.
    column: int = field(default=1, compare=False)


@dataclass(frozen=True, slots=True)
class Not:
    """Logical negation of ``operand``."""

    operand: Node


@dataclass(frozen=True, slots=True)
class And:
    """Both ``left`` and ``right`` match."""

    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Or:
    """``left`` or ``right`` matches."""

    left: Node
    right: Node


Node = Matcher | Not | And | Or


def _quote(value: str) -> str:
    if "`" not in value:
        return f"`{value}`"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def format_rule(node: Node) -> str:
    """Print ``node`` in canonical v3 syntax; parsing the result gives an equal tree."""
    if isinstance(node, Matcher):
        return f"{node.name}({', '.join(_quote(a) for a in node.args)})"
    if isinstance(node, Not):
        inner = format_rule(node.operand)
        return f"!{inner}" if isinstance(node.operand, Matcher | Not) else f"!({inner})"
    if isinstance(node, And):
        return f"{_and_operand(node.left)} && {_and_operand(node.right)}"
    return f"{format_rule(node.left)} || {format_rule(node.right)}"


def _and_operand(node: Node) -> str:
    # OR binds looser than AND, so an OR under an AND needs its parentheses back.
    text = format_rule(node)
    return f"({text})" if isinstance(node, Or) else text


def iter_matchers(node: Node) -> list[Matcher]:
    """Every matcher of the tree, left to right, including those under NOT."""
    if isinstance(node, Matcher):
        return [node]
    if isinstance(node, Not):
        return iter_matchers(node.operand)
    return iter_matchers(node.left) + iter_matchers(node.right)
