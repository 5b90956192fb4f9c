"""Go text/template with the sprig functions, as Traefik's file provider renders files.

`render(source, environ=...)` parses and executes a template the way Traefik does for
every file-provider file: sprig's text functions plus Traefik's `normalize` and `split`,
and dot set to `false` (Traefik gives file templates no data). The engine is pure Python
(lexer, parser, evaluator, functions in this package), with every cost bounded by
`Limits`; any failure is a `TemplateError` carrying the offset in the source
(`position` turns it into a line and column).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from proxynow.config.gotemplate.errors import TemplateError, position
from proxynow.config.gotemplate.evaluate import Limits, execute
from proxynow.config.gotemplate.funcs import FUNCS, LAZY
from proxynow.config.gotemplate.parser import parse

__all__ = ["Limits", "TemplateError", "position", "render"]

_NAMES = frozenset(FUNCS) | LAZY


def render(
    source: str,
    *,
    environ: Mapping[str, str] | None = None,
    limits: Limits | None = None,
    data: object = False,
) -> str:
    """The text `source` produces; `environ` is what `env` reads (default os.environ)."""
    try:
        parsed = parse(source, _NAMES)
    except RecursionError:
        raise TemplateError("template nested too deeply", 0) from None
    env = os.environ if environ is None else environ
    return execute(parsed, data, env, limits or Limits(), "")
