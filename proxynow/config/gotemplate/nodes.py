"""The parsed form of a Go template: statements (text, actions, control structures) and
the pipelines and operands inside actions. Every node keeps its offset in the template
(`pos`) so that an execution error can say where it happened."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "Arg",
    "Chain",
    "Command",
    "Const",
    "Control",
    "Dot",
    "Field",
    "Ident",
    "Jump",
    "Nil",
    "Node",
    "Output",
    "Pipeline",
    "TemplateCall",
    "TextNode",
    "Variable",
]


@dataclass(frozen=True, slots=True)
class Dot:
    pos: int


@dataclass(frozen=True, slots=True)
class Nil:
    pos: int


@dataclass(frozen=True, slots=True)
class Const:
    value: Any
    pos: int


@dataclass(frozen=True, slots=True)
class Ident:
    """A function name."""

    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class Field:
    """`.a.b`: fields of dot."""

    names: tuple[str, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Variable:
    """`$x` or `$x.a.b`."""

    name: str
    names: tuple[str, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Chain:
    """`(pipeline).a.b`: fields of an operand's value."""

    node: Arg
    names: tuple[str, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Command:
    args: tuple[Arg, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Pipeline:
    """`[$a[, $b] :=|=] command | command ...`."""

    decl: tuple[str, ...]
    assign: bool  # `=` (set existing variables) rather than `:=`
    cmds: tuple[Command, ...]
    pos: int


Arg = Dot | Nil | Const | Ident | Field | Variable | Chain | Pipeline


@dataclass(frozen=True, slots=True)
class TextNode:
    text: str
    pos: int


@dataclass(frozen=True, slots=True)
class Output:
    """`{{ pipeline }}`: prints the value unless the pipeline declares variables."""

    pipe: Pipeline
    pos: int


@dataclass(frozen=True, slots=True)
class Control:
    """`if`, `with` or `range` (`kind`), with its body and its `else` part."""

    kind: str
    pipe: Pipeline
    body: tuple[Node, ...]
    orelse: tuple[Node, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class TemplateCall:
    """`{{ template "name" pipeline }}` (and the call half of `block`)."""

    name: str
    pipe: Pipeline | None
    pos: int


@dataclass(frozen=True, slots=True)
class Jump:
    """`{{ break }}` or `{{ continue }}` (`kind`)."""

    kind: str
    pos: int


Node = TextNode | Output | Control | TemplateCall | Jump
