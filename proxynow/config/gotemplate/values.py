"""Go values as templates see them, in Python: printing, truth, comparison, `printf`.

The data a template handles are Python `str`, `int`, `float`, `bool`, `None` (Go's nil),
`list` (a Go slice), `dict` (a Go `map[string]interface{}`) and `NO_VALUE` (a missing map
key, printed `<no value>`). Printing follows Go's fmt `%v` (`[a b]`, `map[k:v]` in key
order, floats in Go's shortest form); `printf` implements fmt's common verbs, flags, width
and precision, and Go's in-band errors (`%!d(string=x)`, `%!v(MISSING)`). Every string
built here is bounded by a `Budget`, so printing a value shared many times over cannot
grow past the output limit.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

from proxynow.rules.goquote import go_quote

__all__ = [
    "NO_VALUE",
    "Budget",
    "Int64",
    "TooLarge",
    "go_quote",
    "is_true",
    "printf",
    "sprint",
    "sprintln",
    "type_name",
    "value_text",
]


class Int64(int):
    """An int64 (what sprig's arithmetic returns): Go will not pass it where an `int` is
    expected (`until (add 1 2)` fails in Traefik), so the distinction is kept."""

    __slots__ = ()


class _NoValue:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<no value>"


NO_VALUE: Any = _NoValue()


class TooLarge(Exception):
    """A string being built went past its budget."""


class Budget:
    """How many characters may still be built; `take` raises `TooLarge` past it."""

    __slots__ = ("left",)

    def __init__(self, left: int) -> None:
        self.left = left

    def take(self, size: int) -> None:
        self.left -= size
        if self.left < 0:
            raise TooLarge


def is_true(value: Any) -> bool:
    """Go's truth: false, 0, nil and empty strings, lists and maps are false."""
    if value is None or value is NO_VALUE:
        return False
    return bool(value)


def type_name(value: Any) -> str:
    if value is None or value is NO_VALUE:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Int64):
        return "int64"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "[]interface {}"
    return "map[string]interface {}"


def value_text(value: Any, budget: Budget) -> str:
    """`fmt.Sprint(value)` for one value (what `{{ value }}` prints)."""
    if value is NO_VALUE:
        text = "<no value>"
    elif isinstance(value, str):
        text = value
    elif value is None:
        text = "<nil>"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        text = go_float(value)
    elif isinstance(value, list):
        budget.take(2)
        return "[" + " ".join(value_text(item, budget) for item in value) + "]"
    else:
        budget.take(5)
        parts = (f"{key}:{value_text(value[key], budget)}" for key in sorted(value))
        return "map[" + " ".join(parts) + "]"
    budget.take(len(text) + 1)
    return text


def go_float(value: float, verb: str = "g", precision: int = -1) -> str:
    """strconv.FormatFloat(value, 'g'/'e'/'f', precision, 64)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if verb == "f":
        return f"{value:.{6 if precision < 0 else precision}f}"
    if verb == "e":
        return _exponent(f"{value:.{6 if precision < 0 else precision}e}")
    if precision >= 0:
        return _exponent(f"{value:.{max(precision, 1)}g}")
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    digits_tuple = Decimal(repr(abs(value))).normalize().as_tuple()
    digits = "".join(map(str, digits_tuple.digits)).rstrip("0") or "0"
    exp = len(digits_tuple.digits) + int(digits_tuple.exponent) - 1
    if value == 0:
        return sign + "0"
    # Shortest form: an exponent when it is below -4 or at least 6 (strconv's rule).
    if exp < -4 or exp >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if exp >= len(digits) - 1:
        return sign + digits + "0" * (exp - len(digits) + 1)
    if exp >= 0:
        return sign + digits[: exp + 1] + "." + digits[exp + 1 :]
    return sign + "0." + "0" * (-exp - 1) + digits


def _exponent(text: str) -> str:
    """Python's exponent (`e+6`, `e-05`) as Go writes it (at least two digits)."""
    return re.sub(r"e([+-])(\d)$", r"e\g<1>0\2", text)


def sprint(args: list[Any], budget: Budget) -> str:
    """fmt.Sprint: a space between operands when neither is a string."""
    out: list[str] = []
    previous_string = False
    for index, arg in enumerate(args):
        is_string = isinstance(arg, str)
        if index > 0 and not is_string and not previous_string:
            out.append(" ")
        out.append(value_text(_fmt_arg(arg), budget))
        previous_string = is_string
    return "".join(out)


def sprintln(args: list[Any], budget: Budget) -> str:
    return " ".join(value_text(_fmt_arg(arg), budget) for arg in args) + "\n"


def _fmt_arg(value: Any) -> Any:
    return None if value is NO_VALUE else value


_SPEC = re.compile(r"%([-+# 0]*)(\d+)?(?:\.(\d*))?(.)?", re.DOTALL)


def printf(format_: str, args: list[Any], budget: Budget) -> str:
    """fmt.Sprintf for the verbs v T s d q t x X o b c f F e E g G and `%%`."""
    out: list[str] = []
    at = 0
    used = 0
    while at < len(format_):
        percent = format_.find("%", at)
        if percent < 0:
            out.append(format_[at:])
            break
        out.append(format_[at:percent])
        match = _SPEC.match(format_, percent)
        assert match is not None
        at = match.end()
        flags, width, precision, verb = match.groups()
        if verb is None:
            out.append("%!(NOVERB)")
            continue
        if verb == "%":
            out.append("%")
            continue
        if used >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        spec = _Spec(flags, int(width) if width else None, _precision(precision))
        budget.take(spec.width or 0)
        out.append(_format(verb, _fmt_arg(args[used]), spec, budget))
        used += 1
    if used < len(args):
        extra = ", ".join(f"{type_name(a)}={value_text(_fmt_arg(a), budget)}" for a in args[used:])
        out.append(f"%!(EXTRA {extra})")
    text = "".join(out)
    budget.take(len(text))
    return text


def _precision(text: str | None) -> int | None:
    if text is None:
        return None
    return int(text) if text else 0


class _Spec:
    __slots__ = ("flags", "precision", "width")

    def __init__(self, flags: str, width: int | None, precision: int | None) -> None:
        self.flags = flags
        self.width = width
        self.precision = precision

    def pad(self, text: str, numeric: bool = False, integer: bool = False) -> str:
        if self.width is None or len(text) >= self.width:
            return text
        fill = self.width - len(text)
        if "-" in self.flags:
            return text + " " * fill
        if numeric and "0" in self.flags and not (integer and self.precision is not None):
            sign = text[:1] if text[:1] in "+-" else ""
            return sign + "0" * fill + text[len(sign) :]
        return " " * fill + text


def _format(verb: str, value: Any, spec: _Spec, budget: Budget) -> str:
    if isinstance(value, list) and verb not in "vT":
        return "[" + " ".join(_format(verb, item, spec, budget) for item in value) + "]"
    if verb == "T":
        return spec.pad(type_name(value) if value is not None else "<nil>")
    if verb == "v":
        return spec.pad(_number(value, "d", spec) if _is_int(value) else value_text(value, budget))
    if verb == "s" and isinstance(value, str):
        text = value if spec.precision is None else value[: spec.precision]
        return spec.pad(text)
    if verb == "q" and isinstance(value, str):
        return spec.pad(go_quote(value))
    if verb == "q" and _is_int(value):
        return spec.pad("'" + go_quote(chr(value))[1:-1].replace("'", "\\'") + "'")
    if verb == "t" and isinstance(value, bool):
        return spec.pad("true" if value else "false")
    if verb in "xX" and isinstance(value, str):
        text = value.encode("utf-8").hex()
        return spec.pad(text.upper() if verb == "X" else text)
    if verb == "c" and _is_int(value):
        return spec.pad(chr(value))
    if verb in "dxXob" and _is_int(value):
        return spec.pad(_number(value, verb, spec), numeric=True, integer=True)
    if verb in "fFeEgG" and isinstance(value, float):
        return spec.pad(_float(value, verb, spec), numeric=True)
    if value is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({type_name(value)}={value_text(value, budget)})"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: int, verb: str, spec: _Spec) -> str:
    base = {"d": "d", "x": "x", "X": "X", "o": "o", "b": "b"}[verb]
    text = format(abs(value), base)
    if spec.precision is not None:
        text = text.rjust(spec.precision, "0")
    if "#" in spec.flags and verb in "xX":
        text = ("0x" if verb == "x" else "0X") + text
    sign = "-" if value < 0 else ("+" if "+" in spec.flags else "")
    return sign + text


def _float(value: float, verb: str, spec: _Spec) -> str:
    precision = -1 if spec.precision is None else spec.precision
    text = go_float(value, verb.lower() if verb in "fFeE" else "g", precision)
    if verb in "EG":
        text = text.upper()
    if "+" in spec.flags and not text.startswith("-"):
        text = "+" + text
    return text
