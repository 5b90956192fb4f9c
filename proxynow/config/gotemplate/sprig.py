"""The sprig (v3) functions Traefik's file provider offers, and Traefik's own two.

Traefik renders file-provider files with sprig's `TxtFuncMap()` (so `env` and `expandenv`
are there) plus `normalize`, and replaces sprig's `split` by Go's `strings.Split`
(`split "a,b" ","` is the list `[a b]`). This module implements the sprig functions real
Traefik files use (strings, lists, dicts, integer math, defaults, conversions, encodings,
`env`); functions whose results depend on the clock or randomness beyond `uuidv4` (dates,
`rand*`), cryptographic key generation, semver and the regular-expression family are left
out, and a template using one fails with "function not defined". A function that builds a
list or string checks its size first, so `until 1000000000` fails instead of allocating.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import uuid
import zlib
from typing import Any

from proxynow.config.gotemplate.funcs import Context, FuncError, register
from proxynow.config.gotemplate.values import (
    NO_VALUE,
    Budget,
    Int64,
    go_quote,
    type_name,
    value_text,
)

__all__ = ["empty", "strval"]


def strval(value: Any, budget: Budget) -> str:
    return value if isinstance(value, str) else value_text(value, budget)


def empty(value: Any) -> bool:
    """sprig's `empty`: nil, zero numbers, false, and empty strings, lists and maps."""
    if value is None or value is NO_VALUE:
        return True
    return not value


def _strslice(value: Any, budget: Budget) -> list[str]:
    if isinstance(value, list):
        return [strval(item, budget) for item in value if item is not None]
    return [] if value is None else [strval(value, budget)]


def _items(ctx: Context, count: int) -> None:
    if count > ctx.max_items:
        raise FuncError(f"a list of {count} items is over the limit of {ctx.max_items}")


def _list(value: Any, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise FuncError(f"cannot {name} on type {type_name(value)}")
    return value


# ---------------------------------------------------------------- strings


@register("upper", "s")
def _upper(ctx: Context, text: str) -> str:
    return text.upper()


@register("lower", "s")
def _lower(ctx: Context, text: str) -> str:
    return text.lower()


@register("title", "s")
def _title(ctx: Context, text: str) -> str:
    """Go's strings.Title: the first letter of every word upper-cased, the rest kept."""
    out = []
    previous = " "
    for char in text:
        out.append(char.upper() if _separator(previous) else char)
        previous = char
    return "".join(out)


def _separator(char: str) -> bool:
    if char.isascii():
        return not (char.isalnum() or char == "_")
    return char.isspace()


@register("untitle", "s")
def _untitle(ctx: Context, text: str) -> str:
    out = []
    previous = " "
    for char in text:
        out.append(char.lower() if previous.isspace() else char)
        previous = char
    return "".join(out)


@register("trim", "s")
def _trim(ctx: Context, text: str) -> str:
    return text.strip()


@register("trimAll", "ss")
@register("trimall", "ss")
def _trim_all(ctx: Context, cutset: str, text: str) -> str:
    return text.strip(cutset) if cutset else text


@register("trimPrefix", "ss")
def _trim_prefix(ctx: Context, prefix: str, text: str) -> str:
    return text.removeprefix(prefix)


@register("trimSuffix", "ss")
def _trim_suffix(ctx: Context, suffix: str, text: str) -> str:
    return text.removesuffix(suffix)


@register("nospace", "s")
def _nospace(ctx: Context, text: str) -> str:
    return "".join(text.split())


@register("contains", "ss")
def _contains(ctx: Context, needle: str, text: str) -> bool:
    return needle in text


@register("hasPrefix", "ss")
def _has_prefix(ctx: Context, prefix: str, text: str) -> bool:
    return text.startswith(prefix)


@register("hasSuffix", "ss")
def _has_suffix(ctx: Context, suffix: str, text: str) -> bool:
    return text.endswith(suffix)


@register("replace", "sss")
def _replace(ctx: Context, old: str, new: str, text: str) -> str:
    if old == "":
        ctx.budget.take(len(new) * (len(text) + 1))
    elif new:
        ctx.budget.take(len(new) * text.count(old))
    return text.replace(old, new)


@register("repeat", "is")
def _repeat(ctx: Context, count: int, text: str) -> str:
    if count < 0:
        raise FuncError("strings: negative Repeat count")
    ctx.budget.take(count * len(text))
    return text * count


@register("substr", "iis")
def _substr(ctx: Context, start: int, end: int, text: str) -> str:
    if start < 0:
        return text[:end]
    if end < 0 or end > len(text):
        return text[start:]
    return text[start:end]


@register("trunc", "is")
def _trunc(ctx: Context, count: int, text: str) -> str:
    if count < 0 and len(text) + count > 0:
        return text[len(text) + count :]
    if count >= 0 and len(text) > count:
        return text[:count]
    return text


@register("initials", "s")
def _initials(ctx: Context, text: str) -> str:
    return "".join(word[0] for word in text.split())


@register("swapcase", "s")
def _swapcase(ctx: Context, text: str) -> str:
    return text.swapcase()


@register("quote", "a*")
def _quote(ctx: Context, *values: Any) -> str:
    return " ".join(go_quote(strval(v, ctx.budget)) for v in values if v is not None)


@register("squote", "a*")
def _squote(ctx: Context, *values: Any) -> str:
    return " ".join(f"'{strval(v, ctx.budget)}'" for v in values if v is not None)


@register("cat", "a*")
def _cat(ctx: Context, *values: Any) -> str:
    return " ".join(strval(v, ctx.budget) for v in values if v is not None)


@register("indent", "is")
def _indent(ctx: Context, spaces: int, text: str) -> str:
    pad = " " * max(spaces, 0)
    ctx.budget.take(len(pad) * (text.count("\n") + 1))
    return pad + text.replace("\n", "\n" + pad)


@register("nindent", "is")
def _nindent(ctx: Context, spaces: int, text: str) -> str:
    return "\n" + _indent(ctx, spaces, text)


@register("plural", "ssi")
def _plural(ctx: Context, one: str, many: str, count: int) -> str:
    return one if count == 1 else many


@register("normalize", "s")
def _normalize(ctx: Context, text: str) -> str:
    """Traefik's `normalize`: runs of characters other than letters and digits become
    one `-`, none at either end."""
    return "-".join(part for part in re.split(r"[^\w]|_", text) if part)


@register("split", "ss")
def _split(ctx: Context, text: str, sep: str) -> list[str]:
    """Go's strings.Split(s, sep) (Traefik's `split`, not sprig's)."""
    parts = list(text) if sep == "" else text.split(sep)
    _items(ctx, len(parts))
    return parts


@register("splitList", "ss")
def _split_list(ctx: Context, sep: str, text: str) -> list[str]:
    return _split(ctx, text, sep)


@register("splitn", "sis")
def _splitn(ctx: Context, sep: str, count: int, text: str) -> dict[str, Any]:
    if count == 0:
        return {}
    parts = text.split(sep, count - 1) if count > 0 else text.split(sep)
    _items(ctx, len(parts))
    return {f"_{index}": part for index, part in enumerate(parts)}


@register("join", "sa")
def _join(ctx: Context, sep: str, values: Any) -> str:
    parts = _strslice(values, ctx.budget)
    ctx.budget.take(len(sep) * len(parts))
    return sep.join(parts)


@register("sortAlpha", "a")
def _sort_alpha(ctx: Context, values: Any) -> list[str]:
    if isinstance(values, list):
        return sorted(_strslice(values, ctx.budget))
    return [strval(values, ctx.budget)]


@register("toString", "a")
def _to_string(ctx: Context, value: Any) -> str:
    return strval(value, ctx.budget)


@register("toStrings", "a")
def _to_strings(ctx: Context, value: Any) -> list[str]:
    return _strslice(value, ctx.budget)


# ---------------------------------------------------------------- numbers


def to_int(value: Any) -> int:
    """cast.ToInt64: numbers truncated, numeric strings parsed, anything else 0."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return int(value)  # a plain int, also from an Int64
    if isinstance(value, float):
        return 0 if math.isnan(value) or math.isinf(value) else int(value)
    if isinstance(value, str):
        text = re.sub(r"\.0*$", "", value)
        try:
            return int(text, 0) if re.fullmatch(r"[+-]?(0[xXoObB])?[0-9a-fA-F_]+", text) else 0
        except ValueError:
            return 0
    return 0


def to_float(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return 0.0
    return 0.0


@register("atoi", "s")
def _atoi(ctx: Context, text: str) -> int:
    return int(text) if re.fullmatch(r"[+-]?[0-9]+", text) else 0


@register("int", "a")
def _int(ctx: Context, value: Any) -> int:
    return to_int(value)


@register("int64", "a")
def _int64(ctx: Context, value: Any) -> int:
    return Int64(to_int(value))


@register("float64", "a")
def _float64(ctx: Context, value: Any) -> float:
    return to_float(value)


@register("add", "a*")
def _add(ctx: Context, *values: Any) -> int:
    return Int64(sum(to_int(v) for v in values))


@register("add1", "a")
def _add1(ctx: Context, value: Any) -> int:
    return Int64(to_int(value) + 1)


@register("sub", "aa")
def _sub(ctx: Context, a: Any, b: Any) -> int:
    return Int64(to_int(a) - to_int(b))


@register("mul", "aa*")
def _mul(ctx: Context, first: Any, *values: Any) -> int:
    result = to_int(first)
    for value in values:
        result *= to_int(value)
        if abs(result) >= 1 << 63:
            raise FuncError("integer overflow in mul")
    return Int64(result)


def _divmod(a: Any, b: Any) -> tuple[int, int]:
    """Go's truncating division and remainder."""
    x, y = to_int(a), to_int(b)
    if y == 0:
        raise FuncError("runtime error: integer divide by zero")
    quotient = abs(x) // abs(y) * (1 if (x < 0) == (y < 0) else -1)
    return quotient, x - quotient * y


@register("div", "aa")
def _div(ctx: Context, a: Any, b: Any) -> int:
    return Int64(_divmod(a, b)[0])


@register("mod", "aa")
def _mod(ctx: Context, a: Any, b: Any) -> int:
    return Int64(_divmod(a, b)[1])


@register("max", "aa*")
@register("biggest", "aa*")
def _max(ctx: Context, *values: Any) -> int:
    return Int64(max(to_int(v) for v in values))


@register("min", "aa*")
def _min(ctx: Context, *values: Any) -> int:
    return Int64(min(to_int(v) for v in values))


@register("floor", "a")
def _floor(ctx: Context, value: Any) -> float:
    return float(math.floor(to_float(value)))


@register("ceil", "a")
def _ceil(ctx: Context, value: Any) -> float:
    return float(math.ceil(to_float(value)))


def _until_step(ctx: Context, start: int, stop: int, step: int) -> list[int]:
    if step == 0 or (stop < start and step > 0) or (stop >= start and step < 0):
        return []
    _items(ctx, -(-abs(stop - start) // abs(step)))
    return list(range(start, stop, step))


@register("until", "i")
def _until(ctx: Context, count: int) -> list[int]:
    return _until_step(ctx, 0, count, 1 if count >= 0 else -1)


@register("untilStep", "iii")
def _until_step_func(ctx: Context, start: int, stop: int, step: int) -> list[int]:
    return _until_step(ctx, start, stop, step)


@register("seq", "i*")
def _seq(ctx: Context, *params: int) -> str:
    if len(params) == 1:
        start, end, step = 1, params[0], 1 if params[0] >= 1 else -1
    elif len(params) == 2:
        start, end = params
        step = 1 if end >= start else -1
    elif len(params) == 3:
        start, step, end = params
        if end < start and step > 0:
            return ""
    else:
        return ""
    numbers = _until_step(ctx, start, end + (1 if end >= start else -1), step)
    return " ".join(map(str, numbers))


# ---------------------------------------------------------------- defaults and flow


@register("default", "aa*")
def _default(ctx: Context, fallback: Any, *given: Any) -> Any:
    if not given or empty(given[0]):
        return fallback
    return given[0]


@register("empty", "a")
def _empty(ctx: Context, value: Any) -> bool:
    return empty(value)


@register("coalesce", "a*")
def _coalesce(ctx: Context, *values: Any) -> Any:
    return next((v for v in values if not empty(v)), None)


@register("all", "a*")
def _all(ctx: Context, *values: Any) -> bool:
    return all(not empty(v) for v in values)


@register("any", "a*")
def _any(ctx: Context, *values: Any) -> bool:
    return any(not empty(v) for v in values)


@register("ternary", "aab")
def _ternary(ctx: Context, if_true: Any, if_false: Any, condition: bool) -> Any:
    return if_true if condition else if_false


@register("fail", "s")
def _fail(ctx: Context, message: str) -> str:
    raise FuncError(message)


@register("env", "s")
def _env(ctx: Context, name: str) -> str:
    return ctx.environ.get(name, "")


_ENV_REF = re.compile(r"\$(?:\{([^}]*)\}|([A-Za-z0-9_]+|[*#$@!?\-]))")


@register("expandenv", "s")
def _expandenv(ctx: Context, text: str) -> str:
    return _ENV_REF.sub(lambda m: ctx.environ.get(m[1] or m[2], ""), text)


@register("uuidv4", "")
def _uuidv4(ctx: Context) -> str:
    return str(uuid.uuid4())


@register("kindOf", "a")
def _kind_of(ctx: Context, value: Any) -> str:
    names = {"[]interface {}": "slice", "map[string]interface {}": "map", "<nil>": "invalid"}
    name = type_name(value)
    return names.get(name, name)


@register("typeOf", "a")
def _type_of(ctx: Context, value: Any) -> str:
    return type_name(value)


# ---------------------------------------------------------------- encodings


@register("b64enc", "s")
def _b64enc(ctx: Context, text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


@register("b64dec", "s")
def _b64dec(ctx: Context, text: str) -> str:
    try:
        return base64.b64decode(text.encode("utf-8"), validate=True).decode("utf-8", "replace")
    except ValueError as error:
        return f"illegal base64 data: {error}"


@register("b32enc", "s")
def _b32enc(ctx: Context, text: str) -> str:
    return base64.b32encode(text.encode("utf-8")).decode("ascii")


@register("b32dec", "s")
def _b32dec(ctx: Context, text: str) -> str:
    try:
        return base64.b32decode(text.encode("utf-8")).decode("utf-8", "replace")
    except ValueError as error:
        return f"illegal base32 data: {error}"


@register("sha1sum", "s")
def _sha1sum(ctx: Context, text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


@register("sha256sum", "s")
def _sha256sum(ctx: Context, text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@register("adler32sum", "s")
def _adler32sum(ctx: Context, text: str) -> str:
    return str(zlib.adler32(text.encode("utf-8")))


def _json(value: Any, budget: Budget, escape_html: bool) -> str:
    """encoding/json's Marshal of a template value (maps by key, HTML escaped)."""
    if isinstance(value, list):
        budget.take(2)
        return "[" + ",".join(_json(item, budget, escape_html) for item in value) + "]"
    if isinstance(value, dict):
        budget.take(2)
        parts = (
            f"{_json(str(k), budget, escape_html)}:{_json(value[k], budget, escape_html)}"
            for k in sorted(value)
        )
        return "{" + ",".join(parts) + "}"
    text = json.dumps(None if value is NO_VALUE else value, ensure_ascii=False)
    if escape_html:
        text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    budget.take(len(text))
    return text


@register("toJson", "a")
def _to_json(ctx: Context, value: Any) -> str:
    return _json(value, ctx.budget, escape_html=True)


@register("toRawJson", "a")
def _to_raw_json(ctx: Context, value: Any) -> str:
    return _json(value, ctx.budget, escape_html=False)


# ---------------------------------------------------------------- paths


def _clean(path: str) -> str:
    """Go's path.Clean."""
    rooted = path.startswith("/")
    parts: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment != "..":
            parts.append(segment)
        elif parts and parts[-1] != "..":
            parts.pop()
        elif not rooted:
            parts.append("..")
    joined = "/".join(parts)
    return "/" + joined if rooted else joined or "."


@register("clean", "s")
def _clean_func(ctx: Context, path: str) -> str:
    return _clean(path)


@register("base", "s")
def _base(ctx: Context, path: str) -> str:
    stripped = path.rstrip("/")
    if not path:
        return "."
    return stripped.rsplit("/", 1)[-1] if stripped else "/"


@register("dir", "s")
def _dir(ctx: Context, path: str) -> str:
    return _clean(path[: path.rfind("/") + 1])


@register("ext", "s")
def _ext(ctx: Context, path: str) -> str:
    last = path.rsplit("/", 1)[-1]
    dot = last.rfind(".")
    return last[dot:] if dot >= 0 else ""


@register("isAbs", "s")
def _is_abs(ctx: Context, path: str) -> bool:
    return path.startswith("/")


# ---------------------------------------------------------------- lists


@register("list", "a*")
@register("tuple", "a*")
def _list_func(ctx: Context, *values: Any) -> list[Any]:
    return list(values)


@register("first", "a")
def _first(ctx: Context, values: Any) -> Any:
    items = _list(values, "first")
    return items[0] if items else None


@register("last", "a")
def _last(ctx: Context, values: Any) -> Any:
    items = _list(values, "last")
    return items[-1] if items else None


@register("rest", "a")
def _rest(ctx: Context, values: Any) -> Any:
    items = _list(values, "rest")
    return items[1:] if items else None


@register("initial", "a")
def _initial(ctx: Context, values: Any) -> Any:
    items = _list(values, "initial")
    return items[:-1] if items else None


@register("append", "aa")
@register("push", "aa")
def _append(ctx: Context, values: Any, value: Any) -> list[Any]:
    items = _list(values, "push")
    _items(ctx, len(items) + 1)
    return [*items, value]


@register("prepend", "aa")
def _prepend(ctx: Context, values: Any, value: Any) -> list[Any]:
    items = _list(values, "prepend")
    _items(ctx, len(items) + 1)
    return [value, *items]


@register("concat", "a*")
def _concat(ctx: Context, *lists: Any) -> list[Any]:
    items = [_list(values, "concat") for values in lists]
    _items(ctx, sum(map(len, items)))
    return [item for values in items for item in values]


@register("reverse", "a")
def _reverse(ctx: Context, values: Any) -> list[Any]:
    return _list(values, "reverse")[::-1]


@register("compact", "a")
def _compact(ctx: Context, values: Any) -> list[Any]:
    return [v for v in _list(values, "compact") if not empty(v)]


def _equal(a: Any, b: Any, budget: Budget) -> bool:
    """reflect.DeepEqual for template values, charged to `budget` so that comparing two
    values that share their parts many times over stays bounded."""
    budget.take(1)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y, budget) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k], budget) for k in a)
    return type(a) is type(b) and bool(a == b)


@register("has", "aa")
def _has(ctx: Context, needle: Any, haystack: Any) -> bool:
    if haystack is None:
        return False
    return any(_equal(needle, item, ctx.budget) for item in _list(haystack, "has"))


@register("uniq", "a")
def _uniq(ctx: Context, values: Any) -> list[Any]:
    result: list[Any] = []
    for value in _list(values, "uniq"):
        if not any(_equal(value, seen, ctx.budget) for seen in result):
            result.append(value)
    return result


@register("without", "aa*")
def _without(ctx: Context, values: Any, *omit: Any) -> list[Any]:
    return [v for v in _list(values, "without") if not any(_equal(v, o, ctx.budget) for o in omit)]


# ---------------------------------------------------------------- dicts


@register("dict", "a*")
def _dict(ctx: Context, *pairs: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for index in range(0, len(pairs), 2):
        key = strval(pairs[index], ctx.budget)
        result[key] = pairs[index + 1] if index + 1 < len(pairs) else ""
    return result


@register("get", "ms")
def _get(ctx: Context, mapping: dict[str, Any], key: str) -> Any:
    return mapping.get(key, "")


@register("set", "msa")
def _set(ctx: Context, mapping: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    _items(ctx, len(mapping) + 1)
    mapping[key] = value
    return mapping


@register("unset", "ms")
def _unset(ctx: Context, mapping: dict[str, Any], key: str) -> dict[str, Any]:
    mapping.pop(key, None)
    return mapping


@register("hasKey", "ms")
def _has_key(ctx: Context, mapping: dict[str, Any], key: str) -> bool:
    return key in mapping


@register("keys", "m*")
def _keys(ctx: Context, *mappings: dict[str, Any]) -> list[str]:
    # Go returns them in map order, which is random; sorted is one of those orders.
    return sorted(key for mapping in mappings for key in mapping)


@register("values", "m")
def _values(ctx: Context, mapping: dict[str, Any]) -> list[Any]:
    return [mapping[key] for key in sorted(mapping)]


@register("pluck", "sm*")
def _pluck(ctx: Context, key: str, *mappings: dict[str, Any]) -> list[Any]:
    return [mapping[key] for mapping in mappings if key in mapping]


@register("pick", "ms*")
def _pick(ctx: Context, mapping: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: mapping[key] for key in keys if key in mapping}


@register("omit", "ms*")
def _omit(ctx: Context, mapping: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if key not in keys}
