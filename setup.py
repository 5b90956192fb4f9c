"""Build hook: compiles the hot modules with mypyc when a C compiler is there (docs/compiled.md).

Everything else is in pyproject.toml. The compiled set is `proxynow.compiled.MODULES`. The
build writes proxynow/compiled.json (each module's source hash) only once every extension
is built; `proxynow.compiled` runs the extensions only when that manifest matches the
sources, so a failed, partial or stale build runs pure Python instead.

    PROXYNOW_PURE_PYTHON=1      build (and run) pure Python
    PROXYNOW_REQUIRE_COMPILED=1 fail instead of falling back to pure Python (CI)
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import sysconfig
import tempfile
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))


def _load_compiled() -> Any:
    """proxynow/compiled.py alone (stdlib only), without importing the package."""
    spec = importlib.util.spec_from_file_location(
        "_proxynow_compiled", os.path.join(HERE, "proxynow", "compiled.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


COMPILED = _load_compiled()
REQUIRED = os.environ.get("PROXYNOW_REQUIRE_COMPILED", "") not in ("", "0")


def _say(message: str) -> None:
    print(f"proxynow build: {message}", file=sys.stderr)


def _give_up(reason: str) -> list[Any]:
    if REQUIRED:
        raise SystemExit(f"proxynow build: {reason} (PROXYNOW_REQUIRE_COMPILED is set)")
    _say(f"{reason}; installing pure Python")
    return []


def _has_compiler() -> bool:
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return shutil.which(cc.split()[0]) is not None


def _mypy_config() -> str:
    """Options of the compile, apart from the project's: third-party modules count as
    `Any` whether installed or not (an isolated build has none), so every build compiles
    the same code; errors outside the compiled set are not the compile's business."""
    handle, path = tempfile.mkstemp(suffix=".ini", prefix="proxynow-mypyc-")
    with os.fdopen(handle, "w") as file:
        file.write("[mypy]\nno_site_packages = True\nignore_missing_imports = True\n")
        file.write("follow_imports = silent\n")
    return path


def extensions() -> list[Any]:
    if os.environ.get(COMPILED.FORCE_PURE, "") not in ("", "0"):
        _say(f"{COMPILED.FORCE_PURE} is set; installing pure Python")
        return []
    if not _has_compiler():
        return _give_up("no C compiler found")
    try:
        from mypyc.build import mypycify
    except ImportError:
        return _give_up("mypyc (mypy) is not installed")
    group = COMPILED.GROUP.removesuffix("__mypyc")
    paths = [os.path.relpath(COMPILED.source_path(m), HERE) for m in COMPILED.MODULES]
    try:
        return list(mypycify(["--config-file", _mypy_config(), *paths], group_name=group))
    except (Exception, SystemExit) as exc:  # mypyc exits on a type error
        return _give_up(f"mypyc could not compile the hot path ({exc!r})")


class BuildExt(build_ext):
    """Builds the group, then writes the manifest; any failure leaves no manifest."""

    def run(self) -> None:
        if not self.extensions:
            return
        manifest = os.path.join(
            os.path.dirname(self.get_ext_fullpath(COMPILED.GROUP)), COMPILED.MANIFEST
        )
        if os.path.exists(manifest):
            os.remove(manifest)
        try:
            super().run()
        except Exception as exc:
            if REQUIRED:
                raise
            _say(f"compiling failed ({exc!r}); installing pure Python")
            return
        hashes = {module: COMPILED.source_hash(module) for module in COMPILED.MODULES}
        os.makedirs(os.path.dirname(manifest), exist_ok=True)
        with open(manifest, "w", encoding="utf-8") as file:
            json.dump(hashes, file, indent=1, sort_keys=True)
        _say("compiled " + ", ".join(COMPILED.MODULES))


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
