"""Executing a parsed Go template: statements, pipelines, variables, `range`, calls.

Execution follows text/template: a pipeline's value is passed as the last argument of the
next command; `$x :=` pushes a variable that lives until the end of the enclosing control
structure, `$x =` changes it; `range` visits a list in order, a map by sorted key, an
integer n as 0..n-1, and runs its `else` part when there is nothing to visit; `with` and
`range` set dot; `template` runs a defined template with a new `$`.

The cost is bounded by `Limits`: the output, the characters functions and printing may
build, the number of steps (actions run, function calls, loop iterations), the size of a
list a function builds, and how deeply controls, parentheses and template calls nest at
run time. Passing any of them is a `TemplateError` at the place it happened.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from proxynow.config.gotemplate import sprig  # noqa: F401  (registers the sprig functions)
from proxynow.config.gotemplate.errors import TemplateError
from proxynow.config.gotemplate.funcs import FUNCS, LAZY, Context, FuncError, call
from proxynow.config.gotemplate.nodes import (
    Arg,
    Chain,
    Command,
    Const,
    Control,
    Dot,
    Field,
    Ident,
    Nil,
    Node,
    Output,
    Pipeline,
    TemplateCall,
    TextNode,
    Variable,
)
from proxynow.config.gotemplate.parser import Parsed
from proxynow.config.gotemplate.values import (
    NO_VALUE,
    Budget,
    TooLarge,
    is_true,
    type_name,
    value_text,
)

__all__ = ["Limits", "execute"]

_MIB = 1 << 20


@dataclass(frozen=True, slots=True)
class Limits:
    """What one rendering may cost."""

    output: int = 10 * _MIB  # characters written
    built: int = 64 * _MIB  # characters built by functions and printing, all told
    steps: int = 1_000_000  # actions run, function calls and loop iterations
    items: int = 100_000  # items in a list a function builds
    depth: int = 100  # controls, parentheses and template calls nested at run time


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


_MISSING: Any = object()  # no piped-in value


def execute(
    parsed: Parsed, data: Any, environ: Mapping[str, str], limits: Limits, name: str
) -> str:
    state = _State(parsed, limits, Context(Budget(limits.built), environ, limits.items))
    state.vars.append(("$", data))
    try:
        state.walk(parsed.main, data)
    except TooLarge:
        raise TemplateError(
            f"template builds more than {limits.built} characters", state.pos
        ) from None
    except RecursionError:
        raise TemplateError("values nested too deeply", state.pos) from None
    return "".join(state.out)


class _State:
    def __init__(self, parsed: Parsed, limits: Limits, ctx: Context) -> None:
        self.templates = parsed.templates
        self.limits = limits
        self.ctx = ctx
        self.out: list[str] = []
        self.size = 0
        self.steps = 0
        self.depth = 0
        self.pos = 0  # of the node being run, for limit errors
        self.vars: list[tuple[str, Any]] = []

    # ------------------------------------------------------------ statements

    def walk(self, nodes: tuple[Node, ...], dot: Any) -> None:
        for node in nodes:
            if isinstance(node, TextNode):
                self.write(node.text, node.pos)
            elif isinstance(node, Output):
                self.output(node, dot)
            elif isinstance(node, Control):
                self.enter(node.pos)
                try:
                    self.control(node, dot)
                finally:
                    self.depth -= 1
            elif isinstance(node, TemplateCall):
                self.template(node, dot)
            else:
                raise _Break if node.kind == "break" else _Continue

    def write(self, text: str, pos: int) -> None:
        self.size += len(text)
        if self.size > self.limits.output:
            raise TemplateError(f"output over the limit of {self.limits.output} characters", pos)
        self.out.append(text)

    def step(self, pos: int) -> None:
        self.steps += 1
        self.pos = pos
        if self.steps > self.limits.steps:
            raise TemplateError(f"more than {self.limits.steps} steps (actions, calls, loops)", pos)

    def enter(self, pos: int) -> None:
        self.depth += 1
        if self.depth > self.limits.depth:
            raise TemplateError(f"nested deeper than {self.limits.depth} levels when run", pos)

    def output(self, node: Output, dot: Any) -> None:
        self.step(node.pos)
        value = self.pipeline(node.pipe, dot)
        if not node.pipe.decl:
            budget = Budget(self.limits.output - self.size)
            try:
                text = value_text(NO_VALUE if value is None else value, budget)
            except TooLarge:
                raise TemplateError(
                    f"output over the limit of {self.limits.output} characters", node.pos
                ) from None
            self.write(text, node.pos)

    def control(self, node: Control, dot: Any) -> None:
        mark = len(self.vars)
        try:
            value = self.pipeline(node.pipe, dot)
            if node.kind == "range":
                self.range(node, value, dot)
            elif is_true(value):
                self.walk(node.body, value if node.kind == "with" else dot)
            else:
                self.walk(node.orelse, dot)
        finally:
            del self.vars[mark:]

    def range(self, node: Control, value: Any, dot: Any) -> None:
        items = self.range_items(value, node)
        if not items:
            self.walk(node.orelse, dot)
            return
        mark = len(self.vars)
        for key, item in items:
            self.step(node.pos)
            if node.pipe.decl:
                self.vars[-1] = (self.vars[-1][0], item)
                if len(node.pipe.decl) == 2:
                    self.vars[-2] = (self.vars[-2][0], key)
            try:
                self.walk(node.body, item)
            except _Break:
                break
            except _Continue:
                pass
            finally:
                del self.vars[mark:]

    def range_items(self, value: Any, node: Control) -> list[tuple[Any, Any]]:
        if value is None or value is NO_VALUE:
            return []
        if isinstance(value, list):
            return list(enumerate(value))
        if isinstance(value, dict):
            return [(key, value[key]) for key in sorted(value)]
        if isinstance(value, int) and not isinstance(value, bool):
            if len(node.pipe.decl) == 2:
                raise TemplateError("can't use an integer to iterate over two variables", node.pos)
            if value > self.limits.steps:
                raise TemplateError(f"range over {value} is over the step limit", node.pos)
            return [(i, i) for i in range(value)]
        raise TemplateError(f"range can't iterate over {value_text(value, Budget(200))}", node.pos)

    def template(self, node: TemplateCall, dot: Any) -> None:
        body = self.templates.get(node.name)
        if body is None:
            raise TemplateError(f"no such template {node.name!r}", node.pos)
        self.step(node.pos)
        value = self.pipeline(node.pipe, dot) if node.pipe is not None else None
        saved = self.vars
        self.vars = [("$", value)]
        self.enter(node.pos)
        try:
            self.walk(body, value)
        finally:
            self.vars = saved
            self.depth -= 1

    # ------------------------------------------------------------ pipelines

    def pipeline(self, pipe: Pipeline, dot: Any) -> Any:
        value = _MISSING
        for cmd in pipe.cmds:
            value = self.command(cmd, dot, value)
        if value is None:
            value = NO_VALUE  # an interface{} holding nil is "no value" (text/template)
        for name in pipe.decl:
            if pipe.assign:
                self.assign(name, value)
            else:
                self.vars.append((name, value))
        return value

    def assign(self, name: str, value: Any) -> None:
        for index in range(len(self.vars) - 1, -1, -1):
            if self.vars[index][0] == name:
                self.vars[index] = (name, value)
                return
        raise TemplateError(f"undefined variable: {name}", self.pos)

    def variable(self, name: str, pos: int) -> Any:
        for var, value in reversed(self.vars):
            if var == name:
                return value
        raise TemplateError(f"undefined variable: {name}", pos)

    def command(self, cmd: Command, dot: Any, final: Any) -> Any:
        first = cmd.args[0]
        if isinstance(first, Ident):
            return self.function(first, cmd.args[1:], dot, final)
        if len(cmd.args) > 1 or final is not _MISSING:
            raise TemplateError(f"can't give argument to non-function {_show(first)}", cmd.pos)
        if isinstance(first, Nil):
            raise TemplateError("nil is not a command", cmd.pos)
        return self.arg(first, dot)

    def arg(self, node: Arg, dot: Any) -> Any:
        if isinstance(node, Const):
            return node.value
        if isinstance(node, Dot):
            return dot
        if isinstance(node, Nil):
            return None
        if isinstance(node, Field):
            return self.fields(dot, node.names, node.pos)
        if isinstance(node, Variable):
            return self.fields(self.variable(node.name, node.pos), node.names, node.pos)
        if isinstance(node, Ident):
            return self.function(node, (), dot, _MISSING)
        if isinstance(node, Chain):
            return self.fields(self.arg(node.node, dot), node.names, node.pos)
        self.enter(node.pos)
        try:
            return self.pipeline(node, dot)
        finally:
            self.depth -= 1

    def fields(self, value: Any, names: tuple[str, ...], pos: int) -> Any:
        for name in names:
            if isinstance(value, dict):
                value = value.get(name, NO_VALUE)
            elif value is None or value is NO_VALUE:
                raise TemplateError(f"nil pointer evaluating interface {{}}.{name}", pos)
            else:
                raise TemplateError(f"can't evaluate field {name} in type {type_name(value)}", pos)
        return value

    def function(self, ident: Ident, args: tuple[Arg, ...], dot: Any, final: Any) -> Any:
        self.step(ident.pos)
        name = ident.name
        if name in LAZY:
            return self.lazy(name, args, dot, final, ident.pos)
        values = [self.arg(arg, dot) for arg in args]
        if final is not _MISSING:
            values.append(final)
        try:
            result = call(FUNCS[name], self.ctx, values)
        except FuncError as error:
            raise TemplateError(f"error calling {name}: {error}", ident.pos) from None
        if isinstance(result, str) and len(result) > self.limits.output:
            raise TemplateError(f"{name} built a string over the output limit", ident.pos)
        return result

    def lazy(self, name: str, args: tuple[Arg, ...], dot: Any, final: Any, pos: int) -> Any:
        """`and` / `or`: the first argument that decides, evaluated left to right."""
        if not args and final is _MISSING:
            raise TemplateError(f"wrong number of args for {name}: want at least 1 got 0", pos)
        value: Any = None
        for arg in (*args, final) if final is not _MISSING else args:
            value = arg if arg is final else self.arg(arg, dot)
            if is_true(value) != (name == "and"):
                return value
        return value


def _show(node: Arg) -> str:
    if isinstance(node, Const):
        return repr(node.value)
    return type(node).__name__.lower()
