"""Template functions: the registry, Go-like argument checking, and Go's own builtins.

A function is registered with the kinds of its parameters (`s` string, `i` int, `f`
number, `b` bool, `l` list, `m` map, `a` anything; a trailing `*` makes the last one
variadic); a call with the wrong number or kind of arguments fails as Go's reflection-based
call does (`wrong type for value; expected string; got int`). `and` and `or` are not here:
they evaluate their arguments lazily, so the evaluator runs them itself. The sprig set and
Traefik's additions are in `sprig.py`, registered in this same table.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from proxynow.config.gotemplate.values import (
    NO_VALUE,
    Budget,
    Int64,
    is_true,
    printf,
    sprint,
    sprintln,
    type_name,
)

__all__ = ["FUNCS", "LAZY", "Context", "Func", "FuncError", "call", "register"]

LAZY = frozenset({"and", "or"})


class FuncError(Exception):
    """A function failed; the evaluator reports it at the call's position."""


@dataclass(slots=True)
class Context:
    """What functions may use: the string budget, the environment, the size limit of a
    list a function builds."""

    budget: Budget
    environ: Mapping[str, str]
    max_items: int


@dataclass(frozen=True, slots=True)
class Func:
    name: str
    params: str
    impl: Callable[..., Any]


FUNCS: dict[str, Func] = {}


def register(name: str, params: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(impl: Callable[..., Any]) -> Callable[..., Any]:
        FUNCS[name] = Func(name, params, impl)
        return impl

    return decorate


_KIND_NAMES = {
    "s": "string",
    "i": "int",
    "f": "float64",
    "b": "bool",
    "l": "slice",
    "m": "map[string]interface {}",
}


def call(func: Func, ctx: Context, args: list[Any]) -> Any:
    """Check `args` against the parameters, then call the function."""
    params = func.params
    variadic = params.endswith("*")
    fixed = params.rstrip("*")
    if (len(args) < len(fixed) - variadic) or (not variadic and len(args) != len(fixed)):
        want = f"at least {len(fixed) - 1}" if variadic else str(len(fixed))
        raise FuncError(f"wrong number of args for {func.name}: want {want} got {len(args)}")
    checked = [
        _check(fixed[min(index, len(fixed) - 1)], None if arg is NO_VALUE else arg)
        for index, arg in enumerate(args)
    ]
    return func.impl(ctx, *checked)


def _check(kind: str, value: Any) -> Any:
    if kind == "a":
        return value
    if value is None:
        raise FuncError(f"invalid value; expected {_KIND_NAMES[kind]}")
    ok = {
        "s": isinstance(value, str),
        "i": isinstance(value, int) and not isinstance(value, bool | Int64),
        "f": isinstance(value, int | float) and not isinstance(value, bool),
        "b": isinstance(value, bool),
        "l": isinstance(value, list),
        "m": isinstance(value, dict),
    }[kind]
    if not ok:
        raise FuncError(
            f"wrong type for value; expected {_KIND_NAMES[kind]}; got {type_name(value)}"
        )
    return float(value) if kind == "f" else value


# ---------------------------------------------------------------- Go's builtins


@register("not", "a")
def _not(ctx: Context, value: Any) -> bool:
    return not is_true(value)


@register("len", "a")
def _len(ctx: Context, value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    if isinstance(value, list | dict):
        return len(value)
    raise FuncError(f"len of type {type_name(value)}")


@register("index", "aa*")
def _index(ctx: Context, item: Any, *indexes: Any) -> Any:
    for key in indexes:
        item = _index_one(item, key)
    return item


def _index_one(item: Any, key: Any) -> Any:
    if item is None or item is NO_VALUE:
        raise FuncError("index of untyped nil")
    if isinstance(item, dict):
        if not isinstance(key, str):
            raise FuncError(f"value has type {type_name(key)}; should be string")
        return item.get(key, NO_VALUE)
    if isinstance(item, list | str):
        index = _int_index(key)
        size = len(item.encode("utf-8") if isinstance(item, str) else item)
        if not 0 <= index < size:
            raise FuncError(f"index out of range: {index}")
        return item.encode("utf-8")[index] if isinstance(item, str) else item[index]
    raise FuncError(f"can't index item of type {type_name(item)}")


def _int_index(key: Any) -> int:
    if isinstance(key, bool) or not isinstance(key, int):
        raise FuncError(f"cannot index slice/array with type {type_name(key)}")
    return key


@register("slice", "aa*")
def _slice(ctx: Context, item: Any, *indexes: Any) -> Any:
    """sprig's `slice` (it replaces Go's builtin, so strings cannot be sliced)."""
    if not isinstance(item, list):
        raise FuncError(f"list should be type of slice or array but {type_name(item)}")
    bounds = [_int_index(index) for index in indexes[:2]]
    start = bounds[0] if bounds else 0
    end = bounds[1] if len(bounds) > 1 else len(item)
    if not 0 <= start <= end <= len(item):
        raise FuncError(f"slice bounds out of range [{start}:{end}]")
    return item[start:end]


@register("print", "a*")
def _print(ctx: Context, *args: Any) -> str:
    return sprint(list(args), ctx.budget)


@register("println", "a*")
def _println(ctx: Context, *args: Any) -> str:
    return sprintln(list(args), ctx.budget)


@register("printf", "sa*")
def _printf(ctx: Context, format_: str, *args: Any) -> str:
    return printf(format_, list(args), ctx.budget)


def _escape_args(ctx: Context, args: tuple[Any, ...]) -> str:
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return sprint(list(args), ctx.budget)


_HTML = {"<": "&lt;", ">": "&gt;", "&": "&amp;", "'": "&#39;", '"': "&#34;", "\0": "\ufffd"}


@register("html", "a*")
def _html(ctx: Context, *args: Any) -> str:
    return "".join(_HTML.get(char, char) for char in _escape_args(ctx, args))


_JS = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "<": "\\u003C",
    ">": "\\u003E",
    "&": "\\u0026",
    "=": "\\u003D",
}


@register("js", "a*")
def _js(ctx: Context, *args: Any) -> str:
    out = []
    for char in _escape_args(ctx, args):
        if char in _JS:
            out.append(_JS[char])
        elif char < " " or not char.isprintable():
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return "".join(out)


@register("urlquery", "a*")
def _urlquery(ctx: Context, *args: Any) -> str:
    return urllib.parse.quote_plus(_escape_args(ctx, args), safe="")


@register("call", "aa*")
def _call(ctx: Context, fn: Any, *args: Any) -> Any:
    raise FuncError(f"non-function of type {type_name(fn)}")


# ---------------------------------------------------------------- comparisons


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if value is None or value is NO_VALUE:
        return "nil"
    return "other"


@register("eq", "aa*")
def _eq(ctx: Context, first: Any, *others: Any) -> bool:
    for other in others:
        kinds = _kind(first), _kind(other)
        if "nil" in kinds:
            if kinds[0] == kinds[1]:
                return True
            continue
        if kinds[0] != kinds[1]:
            raise FuncError("incompatible types for comparison")
        if kinds[0] == "other":
            raise FuncError(f"non-comparable type {type_name(first)}")
        if first == other:
            return True
    return False


@register("ne", "aa")
def _ne(ctx: Context, first: Any, second: Any) -> bool:
    return not _eq(ctx, first, second)


def _ordered(first: Any, second: Any) -> None:
    kinds = _kind(first), _kind(second)
    if kinds[0] in ("bool", "nil", "other") or kinds[1] in ("bool", "nil", "other"):
        raise FuncError("invalid type for comparison")
    if kinds[0] != kinds[1]:
        raise FuncError("incompatible types for comparison")


@register("lt", "aa")
def _lt(ctx: Context, first: Any, second: Any) -> bool:
    _ordered(first, second)
    return bool(first < second)


@register("le", "aa")
def _le(ctx: Context, first: Any, second: Any) -> bool:
    _ordered(first, second)
    return bool(first <= second)


@register("gt", "aa")
def _gt(ctx: Context, first: Any, second: Any) -> bool:
    _ordered(first, second)
    return bool(first > second)


@register("ge", "aa")
def _ge(ctx: Context, first: Any, second: Any) -> bool:
    _ordered(first, second)
    return bool(first >= second)
