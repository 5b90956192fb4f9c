"""Go's `strconv.Quote`, which both Go templates (`printf "%q"`, config/gotemplate/) and
Traefik's access log lines (edge/http/access_lines.py) write strings with.

Its own module, in the lowest layer: the access log of a worker needs the quoting, not the
template engine its package would bring along (`proxynow.config.gotemplate`'s `__init__`
imports the parser, evaluator and sprig functions: about 20% of a worker's imports).
"""

from __future__ import annotations

__all__ = ["go_quote"]


def go_quote(text: str) -> str:
    """strconv.Quote: printable characters kept, the rest escaped."""
    out = ['"']
    for char in text:
        code = ord(char)
        if char in _QUOTE_ESCAPES:
            out.append(_QUOTE_ESCAPES[char])
        elif char.isprintable():
            out.append(char)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_QUOTE_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}
