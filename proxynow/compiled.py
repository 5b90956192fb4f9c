"""Which build of the hot path runs: the mypyc-compiled modules, or pure Python.

The hot modules (`MODULES`) are compiled by mypyc into one group when the package is built
with a C compiler (setup.py; docs/compiled.md). The build writes `MANIFEST` beside this
file: the SHA-256 of each module's source as compiled. At `import proxynow` (before any hot
module can be imported) `install` compares it with the sources on disk: the compiled
modules run only if every one is there for this interpreter and every source is unchanged.
Otherwise, or when `PROXYNOW_PURE_PYTHON=1`, a finder placed first on `sys.meta_path`
loads all of them from their `.py` files, so that an edited source never runs as a stale
extension (the group calls across its modules natively: it runs whole or not at all).

Standard library only: it runs before anything else of the package is imported.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from types import ModuleType

__all__ = ["FORCE_PURE", "MANIFEST", "MODULES", "Build", "build", "describe", "install"]

# The compiled set, the one list (setup.py reads it). Kept to what pays, measured with
# callgrind per module: docs/benchmarks.md, "Compiled hot path".
MODULES: tuple[str, ...] = (
    "proxynow.edge.http1.protocol",
    "proxynow.edge.proxy.dispatch",
    "proxynow.edge.http.exchange",
    "proxynow.edge.message.headers",
    "proxynow.edge.upstream.connection",
    "proxynow.edge.upstream.pool",
    "proxynow.edge.balance.wrr",
    "proxynow.edge.core.metrics",
    "proxynow.edge.http.access_lines",
    "proxynow.edge.http.middlewares.base",
    "proxynow.edge.http.middlewares.gourl",
    "proxynow.edge.http.middlewares.strip_prefix",
    "proxynow.edge.http.middlewares.headers",
    "proxynow.edge.http.middlewares.rate_limit",
    "proxynow.edge.http.middlewares.compress",
    "proxynow.edge.http.middlewares.ip_allow_list",
    "proxynow.rules.request",
    "proxynow.edge.http2.protocol",
    "proxynow.edge.http2.stream",
    "proxynow.edge.http2.ngcodec",
)
# mypyc's shared library of the group (`group_name` in setup.py, plus mypyc's suffix).
GROUP = "proxynow._hot__mypyc"
MANIFEST = "compiled.json"
FORCE_PURE = "PROXYNOW_PURE_PYTHON"

_ROOT = os.path.dirname(os.path.abspath(__file__))  # the `proxynow` package folder


class Build:
    """What runs: `compiled` with the modules, or pure Python and why."""

    __slots__ = ("compiled", "reason")

    def __init__(self, compiled: bool, reason: str) -> None:
        self.compiled = compiled
        self.reason = reason


def source_path(module: str, root: str = _ROOT) -> str:
    return os.path.join(root, *module.split(".")[1:]) + ".py"


def source_hash(module: str, root: str = _ROOT) -> str:
    with open(source_path(module, root), "rb") as file:
        return hashlib.sha256(file.read()).hexdigest()


def _has_extension(module: str, root: str) -> bool:
    base = os.path.join(root, *module.split(".")[1:])
    return any(os.path.exists(base + suffix) for suffix in importlib.machinery.EXTENSION_SUFFIXES)


def decide(root: str = _ROOT, environ: os._Environ[str] | dict[str, str] = os.environ) -> Build:
    """Compiled only when asked for nothing else, built whole, and built from these sources."""
    if environ.get(FORCE_PURE, "") not in ("", "0"):
        return Build(False, f"{FORCE_PURE} is set")
    try:
        with open(os.path.join(root, MANIFEST), encoding="utf-8") as file:
            built: dict[str, str] = json.load(file)
    except (OSError, ValueError):
        return Build(False, "not built with a C compiler")
    if sorted(built) != sorted(MODULES):
        return Build(False, "the compiled set changed since the build: rebuild")
    for module in (GROUP, *MODULES):
        if not _has_extension(module, root):
            return Build(False, f"{module} is not built for this interpreter: rebuild")
    for module in MODULES:
        if built[module] != source_hash(module, root):
            return Build(False, f"{source_path(module, root)} changed since the build: rebuild")
    return Build(True, "")


class SourceFinder(importlib.abc.MetaPathFinder):
    """Finds the hot modules as source, ahead of the extensions beside them."""

    def __init__(self, modules: Sequence[str], root: str = _ROOT) -> None:
        self.paths = {module: source_path(module, root) for module in modules}

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        source = self.paths.get(fullname)
        return None if source is None else importlib.util.spec_from_file_location(fullname, source)


_build: Build | None = None


def install() -> Build:
    """Decide once per process; in pure mode put the source finder first."""
    global _build
    if _build is None:
        _build = decide()
        if not _build.compiled:
            sys.meta_path.insert(0, SourceFinder(MODULES))
    return _build


def build() -> Build:
    return install()


def describe() -> str:
    """For `proxynow version`: the compiled modules, or "pure Python" and why."""
    current = build()
    if current.compiled:
        return "compiled (mypyc): " + ", ".join(MODULES)
    return f"pure Python ({current.reason})"
